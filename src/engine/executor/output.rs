//! The job's merged stdout/stderr: read from one pipe, split into lines, redacted, handed to
//! the log sink in order while the job runs, with a bounded tail kept for the failure cause.
//!
//! Memory stays bounded whatever the job prints: a line longer than [`MAX_LINE_BYTES`] is
//! split (never inside a secret, so that each piece is redacted whole), and only the last
//! [`TAIL_LINES`] lines are kept. Bytes that are not UTF-8 are
//! replaced with U+FFFD.
//!
//! Speed: what one read returns (up to 256 KiB) goes to the sink as one block of lines when
//! nothing in it needs a change (valid UTF-8, no `\r`, no overlong line, nothing to redact),
//! which is the common case and costs a few passes over the bytes (UTF-8, `\r`, secrets), not
//! work per line; the
//! sink is flushed after each read, so lines still appear as they are printed. Cancellation: none; the read ends when the last process of the job
//! closes the pipe (the executor stops waiting for it after the job's processes are gone).

use std::collections::VecDeque;

use std::io::{PipeReader, Read};

use crate::engine::redact::Redactor;

/// A line longer than this many bytes is emitted in pieces of this size.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// Most bytes taken from the pipe at once (one block for the sink).
const READ_BYTES: usize = 256 * 1024;

/// How many of the last output lines are kept for the failure cause.
pub const TAIL_LINES: usize = 30;

/// Where a job's output lines go (stderr in local mode; stdout and S3 in AWS modes).
/// Lines arrive already redacted and without their trailing newline.
pub trait LogSink: Send + Sync {
    /// One output line of the job.
    fn line(&self, line: &str);

    /// Several whole lines, each ending with `\n`, in order. By default, one [`line`](Self::line)
    /// call each.
    fn lines(&self, block: &str) {
        for line in block.split_terminator('\n') {
            self.line(line);
        }
    }

    /// Writes out what the sink buffered; called after each read of the job's output.
    fn flush(&self) {}
}

/// What the reader saw, returned when the pipe closes.
#[derive(Debug, Default, Clone)]
pub struct OutputSummary {
    /// The last [`TAIL_LINES`] lines, redacted, oldest first.
    pub tail: Vec<String>,
    /// Bytes read from the pipe in all.
    pub bytes: u64,
}

/// Reads `pipe` until end of file, sending each line to `sink`. Blocking: it runs on a thread
/// of its own, so that a sink that blocks (a stalled stdout, a slow disk) holds up this job's
/// output only, never the runtime that beats the other jobs' heartbeats.
pub fn pump(mut pipe: PipeReader, redactor: Redactor, sink: &dyn LogSink) -> OutputSummary {
    let mut splitter = LineSplitter::new(redactor);
    let mut buf = vec![0u8; READ_BYTES];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                splitter.push(&buf[..n], sink);
                sink.flush();
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "reading job output failed; the rest of its output is lost");
                break;
            }
        }
    }
    let summary = splitter.finish(sink);
    sink.flush();
    summary
}

/// Splits a byte stream into bounded lines and keeps the tail.
pub struct LineSplitter {
    redactor: Redactor,
    pending: Vec<u8>,
    tail: VecDeque<String>,
    /// The last [`TAIL_LINES`] lines (each ending with `\n`) of the last block sent whole,
    /// newer than `tail`: one copy per block instead of a string per line. Moved into `tail`
    /// before a line is added there.
    recent: String,
    bytes: u64,
}

impl LineSplitter {
    /// A splitter that redacts with `redactor`.
    pub fn new(redactor: Redactor) -> Self {
        LineSplitter {
            redactor,
            pending: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES),
            recent: String::new(),
            bytes: 0,
        }
    }

    /// Feeds a chunk of bytes; complete lines go to `sink`.
    pub fn push(&mut self, mut chunk: &[u8], sink: &dyn LogSink) {
        self.bytes += chunk.len() as u64;
        // A line begun in an earlier chunk ends first, on its own.
        if !self.pending.is_empty()
            && let Some(pos) = memchr::memchr(b'\n', chunk)
        {
            self.pending.extend_from_slice(&chunk[..pos]);
            self.flush_line(sink);
            chunk = &chunk[pos + 1..];
        }
        if self.pending.is_empty()
            && let Some(last) = memchr::memrchr(b'\n', chunk)
            && self.push_block(&chunk[..=last], sink)
        {
            chunk = &chunk[last + 1..];
        }
        while let Some(pos) = memchr::memchr(b'\n', chunk) {
            self.pending.extend_from_slice(&chunk[..pos]);
            self.flush_line(sink);
            chunk = &chunk[pos + 1..];
        }
        self.pending.extend_from_slice(chunk);
        // Cut long lines only once enough follows the cut to see a secret that spans it.
        while self.pending.len() >= MAX_LINE_BYTES + self.redactor.reach() {
            self.cut_pending(sink);
        }
    }

    /// Sends whole lines (`block` ends with `\n`) to `sink` as one block when none of them
    /// needs a change; false (nothing sent) otherwise.
    fn push_block(&mut self, block: &[u8], sink: &dyn LogSink) -> bool {
        let Ok(text) = std::str::from_utf8(block) else {
            return false;
        };
        if memchr::memchr(b'\r', block).is_some()
            || has_long_line(block)
            || self.redactor.finds(text)
        {
            return false;
        }
        sink.lines(text);
        // The start of the block's last TAIL_LINES lines, when it has that many.
        let body = &text[..text.len() - 1];
        if let Some((at, _)) = body.rmatch_indices('\n').nth(TAIL_LINES - 1) {
            self.recent.clear();
            self.recent.push_str(&text[at + 1..]);
            return true;
        }
        // Fewer lines than the tail keeps: each one is remembered.
        self.settle_recent();
        for line in text.split_terminator('\n') {
            remember(&mut self.tail, line.to_string());
        }
        true
    }

    /// Moves the lines of `recent` into `tail`.
    fn settle_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        for line in self.recent.split_terminator('\n') {
            remember(&mut self.tail, line.to_string());
        }
        self.recent.clear();
    }

    /// Emits the pending line, whole now, in pieces of at most [`MAX_LINE_BYTES`].
    fn flush_line(&mut self, sink: &dyn LogSink) {
        while self.pending.len() > MAX_LINE_BYTES {
            self.cut_pending(sink);
        }
        self.flush_pending(sink);
    }

    /// Emits the first piece of an overlong pending line, never cutting a secret in two.
    fn cut_pending(&mut self, sink: &dyn LogSink) {
        let cut = self.redactor.safe_cut(&self.pending, MAX_LINE_BYTES).max(1);
        let rest = self.pending.split_off(cut);
        self.flush_pending(sink);
        self.pending = rest;
    }

    /// Emits a last unterminated line, if any, and returns the summary.
    pub fn finish(mut self, sink: &dyn LogSink) -> OutputSummary {
        if !self.pending.is_empty() {
            self.flush_line(sink);
        }
        self.settle_recent();
        OutputSummary {
            tail: self.tail.into(),
            bytes: self.bytes,
        }
    }

    fn flush_pending(&mut self, sink: &dyn LogSink) {
        let raw = std::mem::take(&mut self.pending);
        let text = String::from_utf8_lossy(&raw);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let line = self.redactor.redact(text);
        sink.line(&line);
        self.settle_recent();
        remember(&mut self.tail, line);
    }
}

/// Adds `line` to the tail, dropping its oldest line once it holds [`TAIL_LINES`].
fn remember(tail: &mut VecDeque<String>, line: String) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// True when a line of `block` (whole lines) is longer than [`MAX_LINE_BYTES`]: jumps from
/// the last newline of each window of that size, so short lines cost nothing per line.
fn has_long_line(block: &[u8]) -> bool {
    let mut start = 0;
    while block.len() - start > MAX_LINE_BYTES {
        let window = &block[start..start + MAX_LINE_BYTES + 1];
        match memchr::memrchr(b'\n', window) {
            Some(at) => start += at + 1,
            None => return true,
        }
    }
    false
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
