//! Where a job's output lines go in AWS modes: every line on stdout tagged with the job (for
//! CloudWatch through the awslogs driver), and, for Attini jobs, the JSON-lines object the
//! Attini CLI follows (CONTRACT.md 5.6.6): `{"timestamp": <epoch ms>, "data": "<line>"}` per
//! line, stored when new lines arrived and 10 s passed since the last upload, and once more at
//! the end. Under [`APPEND_FROM`] the object is stored whole; from then on only the new lines
//! are sent and appended to it ([`LogStore::append`]), at once when [`FLUSH_AT`] bytes wait,
//! and the runner keeps no copy of what is stored, so a job's log costs at most about twice
//! [`MAX_PENDING`] of memory whatever its size; lines a job writes faster than S3 takes them
//! are left out of the object with a note (stdout, hence CloudWatch, has them all). A failed upload keeps its lines for the next one, is logged and never fails the job.
//! Cancellation: dropping a [`JobLogHandle`] without [`JobLogHandle::finish`] stops the
//! uploader without a final upload.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::calls::CallError;
use crate::engine::executor::LogSink;
use crate::engine::executor::batch::{Batch, Stream};

/// Least time between two uploads of the log object.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// Largest log object kept; later lines reach stdout only.
pub const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;
/// From this size on the object is appended to ([`LogStore::append`]) instead of stored whole,
/// and the runner no longer keeps what it already stored: 5 MiB, S3's smallest part.
pub const APPEND_FROM: usize = 5 * 1024 * 1024;
/// Bytes of new lines that are stored at once, without waiting for [`SYNC_INTERVAL`].
pub const FLUSH_AT: usize = 4 * 1024 * 1024;
/// Most bytes of lines waiting to be stored (a job writing faster than S3 takes it, or S3
/// failing); later lines are left out of the object, with a note, until they drain.
pub const MAX_PENDING: usize = 8 * 1024 * 1024;

/// Where a job's log object is stored (the S3 object in AWS modes).
pub trait LogStore: Send + Sync {
    /// Where it goes, for logs (e.g. `s3://bucket/key`).
    fn describe(&self) -> String;
    /// Stores `body` as the whole log (one attempt).
    fn put(&self, body: Bytes) -> PutFuture<'_>;
    /// Adds `more` at the end of the stored log, which holds at least [`APPEND_FROM`] bytes
    /// (one attempt; the object is replaced whole or not at all).
    fn append(&self, more: Bytes) -> PutFuture<'_>;
}

/// The future returned by [`LogStore::put`] and [`LogStore::append`].
pub type PutFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send + 'a>>;

#[derive(Default)]
struct Buffer {
    /// The whole object while it is under [`APPEND_FROM`]; empty once it is appended to.
    head: Vec<u8>,
    /// The object has reached [`APPEND_FROM`]: new lines are appended to it.
    appending: bool,
    /// Lines not yet stored.
    pending: Vec<u8>,
    /// Bytes the object holds once every pending line is stored (for the size limit).
    total: usize,
    dirty: bool,
    full: bool,
    /// Lines left out because [`MAX_PENDING`] bytes were waiting.
    skipped: usize,
}

/// The log sink of one job.
pub struct JobLog {
    tag: String,
    store: Option<Arc<dyn LogStore>>,
    max_bytes: usize,
    buffer: Mutex<Buffer>,
    changed: Notify,
    /// [`FLUSH_AT`] bytes wait: store them now.
    plenty: Notify,
    closing: CancellationToken,
    stdout: Batch,
}

/// A running job log and its uploader task.
pub struct JobLogHandle {
    log: Arc<JobLog>,
    uploader: Option<JoinHandle<()>>,
}

impl JobLog {
    /// Starts a log whose stdout lines are prefixed with `[tag]`, uploading to `store` if any.
    /// Control characters in the tag (a step name with a newline) become `?`, so that no tag
    /// can forge a log line.
    pub fn start(tag: String, store: Option<Arc<dyn LogStore>>) -> JobLogHandle {
        Self::start_with_limit(tag, store, MAX_LOG_BYTES)
    }

    /// As [`JobLog::start`], keeping at most `max_bytes` in the log object.
    pub fn start_with_limit(
        tag: String,
        store: Option<Arc<dyn LogStore>>,
        max_bytes: usize,
    ) -> JobLogHandle {
        let tag = tag
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let log = Arc::new(JobLog {
            tag,
            store,
            max_bytes,
            buffer: Mutex::default(),
            changed: Notify::new(),
            plenty: Notify::new(),
            closing: CancellationToken::new(),
            stdout: Batch::new(Stream::Stdout),
        });
        let uploader = log.store.is_some().then(|| {
            let log = log.clone();
            tokio::spawn(async move { log.sync_loop().await })
        });
        JobLogHandle { log, uploader }
    }

    /// Uploads when lines came, at most every [`SYNC_INTERVAL`]; an upload in progress is
    /// never cut off (it holds lines taken from the buffer), so closing waits for it.
    async fn sync_loop(&self) {
        loop {
            // A failed upload left its lines dirty: try again without waiting for a new one.
            // A wake-up may be stale (a line stored by the last upload also left one), so
            // the lines are looked at again after each.
            while !self.lock().dirty {
                tokio::select! {
                    _ = self.changed.notified() => {}
                    _ = self.closing.cancelled() => return,
                }
            }
            self.upload().await;
            tokio::select! {
                _ = tokio::time::sleep(SYNC_INTERVAL) => {}
                _ = self.plenty.notified() => {}
                _ = self.closing.cancelled() => return,
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the pending lines: the whole object while it is small, else appended to it.
    /// On failure the lines wait for the next upload.
    async fn upload(&self) {
        let Some(store) = &self.store else { return };
        let (sending, whole) = {
            let mut buffer = self.lock();
            if !buffer.dirty {
                return;
            }
            buffer.dirty = false;
            let sending = Bytes::from(std::mem::take(&mut buffer.pending));
            let whole =
                (!buffer.appending).then(|| Bytes::from([&buffer.head[..], &sending[..]].concat()));
            (sending, whole)
        };
        let bytes = sending.len();
        tracing::debug!(
            log = store.describe(),
            bytes,
            whole = whole.is_some(),
            "syncing the job log"
        );
        let stored = match &whole {
            Some(body) => store.put(body.clone()).await,
            None => store.append(sending.clone()).await,
        };
        let mut buffer = self.lock();
        match stored {
            Ok(()) => {
                match whole {
                    Some(body) if body.len() >= APPEND_FROM => {
                        buffer.appending = true;
                        buffer.head = Vec::new();
                    }
                    Some(body) => buffer.head = Vec::from(body),
                    None => {}
                }
                if buffer.skipped > 0 {
                    let note = format!(
                        "[attini-runner] {} lines are missing here: S3 did not take them in time; they are in CloudWatch",
                        std::mem::take(&mut buffer.skipped)
                    );
                    push_entry(&mut buffer, &note);
                }
            }
            Err(e) => {
                let mut back = Vec::from(sending);
                back.append(&mut buffer.pending);
                buffer.pending = back;
                buffer.dirty = true;
                drop(buffer);
                tracing::warn!(log = store.describe(), error = %e,
                    "could not sync the job log; the runner needs s3:PutObject on it (the job goes on)");
            }
        }
    }

    fn append(&self, line: &str) {
        let mut buffer = self.lock();
        if buffer.full {
            return;
        }
        let mut line = entry(line);
        if buffer.total + line.len() > self.max_bytes {
            buffer.full = true;
            line = entry(&format!(
                "[attini-runner] the log is larger than {} bytes; later lines are in CloudWatch only",
                self.max_bytes
            ));
        } else if buffer.pending.len() + line.len() > MAX_PENDING {
            buffer.skipped += 1;
            return;
        }
        buffer.total += line.len();
        buffer.pending.extend_from_slice(&line);
        buffer.dirty = true;
        let plenty = buffer.pending.len() >= FLUSH_AT;
        drop(buffer);
        self.changed.notify_one();
        if plenty {
            self.plenty.notify_one();
        }
    }
}

/// A line as the log object holds it: `{"timestamp": <epoch ms>, "data": <line>}` and a newline.
fn entry(data: &str) -> Vec<u8> {
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut entry = serde_json::json!({ "timestamp": timestamp, "data": data })
        .to_string()
        .into_bytes();
    entry.push(b'\n');
    entry
}

fn push_entry(buffer: &mut Buffer, data: &str) {
    let entry = entry(data);
    buffer.total += entry.len();
    buffer.pending.extend_from_slice(&entry);
    buffer.dirty = true;
}

impl LogSink for JobLog {
    fn line(&self, line: &str) {
        let tag = self.tag.as_bytes();
        self.stdout
            .push(&[b"[", tag, b"] ", line.as_bytes(), b"\n"]);
        if self.store.is_some() {
            self.append(line);
        }
    }

    fn flush(&self) {
        self.stdout.flush();
    }
}

impl JobLogHandle {
    /// The sink to give the engine.
    pub fn sink(&self) -> Arc<JobLog> {
        self.log.clone()
    }

    /// Stops the periodic uploads (waiting for one in progress) and uploads whatever is new.
    pub async fn finish(mut self) {
        self.log.closing.cancel();
        if let Some(uploader) = self.uploader.take() {
            let _ = uploader.await;
        }
        self.log.upload().await;
        // A note about skipped lines may have come with the last upload.
        self.log.upload().await;
    }
}

impl Drop for JobLogHandle {
    fn drop(&mut self) {
        if let Some(uploader) = self.uploader.take() {
            uploader.abort();
        }
    }
}

#[cfg(test)]
#[path = "joblog_tests.rs"]
mod tests;
