//! Output bytes gathered between two flushes of a [`LogSink`](super::LogSink) that writes to
//! the runner's stdout or stderr: one write per read of the job's output instead of one per
//! line. Bounded: past [`FLUSH_AT`] bytes it writes at once. Each flush is one `write_all`
//! under the stream's lock, so lines of concurrent jobs never interleave inside a line.
//! Nothing to cancel.

use std::io::Write;
use std::sync::Mutex;

/// Most bytes kept before they are written, whether or not a flush came.
pub const FLUSH_AT: usize = 256 * 1024;

/// Which of the runner's streams a batch goes to.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Bytes waiting for the next flush.
#[derive(Debug)]
pub struct Batch {
    stream: Stream,
    bytes: Mutex<Vec<u8>>,
}

impl Batch {
    /// An empty batch for `stream`.
    pub fn new(stream: Stream) -> Self {
        Batch {
            stream,
            bytes: Mutex::new(Vec::new()),
        }
    }

    /// Appends `parts` (one line with its prefix and newline, or a block of lines). A block
    /// of half a batch or more, with nothing waiting before it, is written as it is, without
    /// a copy (a job printing fast sends blocks of nearly a read, 256 KiB).
    pub fn push(&self, parts: &[&[u8]]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        if bytes.is_empty() && parts.iter().map(|p| p.len()).sum::<usize>() >= FLUSH_AT / 2 {
            // Under the batch's lock, so a flush of another block cannot come between.
            self.write_parts(parts);
            return;
        }
        for part in parts {
            bytes.extend_from_slice(part);
        }
        if bytes.len() >= FLUSH_AT {
            self.write(&mut bytes);
        }
    }

    /// Bytes waiting for the next flush.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.bytes.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Bytes the batch holds memory for.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity()
    }

    /// Writes out what is waiting.
    pub fn flush(&self) {
        let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
        self.write(&mut bytes);
    }

    fn write(&self, bytes: &mut Vec<u8>) {
        if bytes.is_empty() {
            return;
        }
        self.write_parts(&[bytes]);
        bytes.clear();
        // Keep a large batch's memory only while output is heavy.
        if bytes.capacity() > FLUSH_AT * 2 {
            bytes.shrink_to(FLUSH_AT);
        }
    }

    /// Writes `parts` in order under the stream's lock.
    fn write_parts(&self, parts: &[&[u8]]) {
        // A closed or full stream loses output lines, never the job.
        let _ = match self.stream {
            Stream::Stdout => write_each(&mut std::io::stdout().lock(), parts),
            Stream::Stderr => write_each(&mut std::io::stderr().lock(), parts),
        };
    }
}

fn write_each(out: &mut impl Write, parts: &[&[u8]]) -> std::io::Result<()> {
    parts.iter().try_for_each(|part| out.write_all(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_wait_until_256_kib_are_gathered() {
        let batch = Batch::new(Stream::Stderr);
        let line = [b'.'; 1023];
        for _ in 0..255 {
            batch.push(&[&line, b"\n"]);
        }
        assert_eq!(batch.waiting(), 255 * 1024);
        batch.push(&[&line, b"\n"]);
        assert_eq!(batch.waiting(), 0, "256 KiB gathered and not written");
    }

    /// A batch keeps up to 512 KiB of memory between heavy writes, and gives back what a
    /// larger one took once it is written. (Newlines only, so the captured stderr stays short
    /// to read.)
    #[test]
    fn a_batch_keeps_at_most_twice_its_size_once_written() {
        let batch = Batch::new(Stream::Stderr);
        batch.push(&[b"\n"]);
        batch.push(&[&vec![b'\n'; 2 * FLUSH_AT - 1]]);
        assert_eq!(batch.waiting(), 0);
        assert_eq!(batch.capacity(), 2 * FLUSH_AT, "512 KiB kept");
        let batch = Batch::new(Stream::Stderr);
        batch.push(&[b"\n"]);
        batch.push(&[&vec![b'\n'; 3 * FLUSH_AT / 2]]);
        assert_eq!(batch.waiting(), 0);
        assert_eq!(batch.capacity(), 3 * FLUSH_AT / 2 + 1, "384 KiB kept");
        batch.push(&[b"\n"]);
        batch.push(&[&vec![b'\n'; 3 * FLUSH_AT]]);
        assert_eq!(batch.waiting(), 0);
        assert!(
            batch.capacity() <= FLUSH_AT,
            "{} bytes kept",
            batch.capacity()
        );
    }
}
