//! Where a job's output lines go in AWS modes: every line on stdout tagged with the job (for
//! CloudWatch through the awslogs driver), and, for Attini jobs, the JSON-lines object the
//! Attini CLI follows (CONTRACT.md 5.6.6): `{"timestamp": <epoch ms>, "data": "<line>"}` per
//! line, uploaded whole when new lines arrived and 10 s passed since the last upload, and once
//! more at the end. A failed upload is logged and never fails the job. Cancellation: dropping
//! a [`JobLog`] without [`JobLog::finish`] stops the uploader without a final upload.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use std::future::Future;
use std::pin::Pin;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::calls::CallError;
use crate::engine::executor::LogSink;
use crate::engine::executor::batch::{Batch, Stream};

/// Least time between two uploads of the log object.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(10);
/// Largest log object kept; later lines reach stdout only.
pub const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;

/// Where a job's log object is stored (the S3 object in AWS modes): each call replaces the
/// whole object with `body`.
pub trait LogStore: Send + Sync {
    /// Where it goes, for logs (e.g. `s3://bucket/key`).
    fn describe(&self) -> String;
    /// Stores `body` as the whole log (one attempt).
    fn put(&self, body: Vec<u8>) -> PutFuture<'_>;
}

/// The future returned by [`LogStore::put`].
pub type PutFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CallError>> + Send + 'a>>;

#[derive(Default)]
struct Buffer {
    content: Vec<u8>,
    dirty: bool,
    full: bool,
}

/// The log sink of one job.
pub struct JobLog {
    tag: String,
    store: Option<Arc<dyn LogStore>>,
    max_bytes: usize,
    buffer: Mutex<Buffer>,
    changed: Notify,
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
            stdout: Batch::new(Stream::Stdout),
        });
        let uploader = log.store.is_some().then(|| {
            let log = log.clone();
            tokio::spawn(async move { log.sync_loop().await })
        });
        JobLogHandle { log, uploader }
    }

    async fn sync_loop(&self) {
        loop {
            self.changed.notified().await;
            self.upload().await;
            tokio::time::sleep(SYNC_INTERVAL).await;
        }
    }

    async fn upload(&self) {
        let Some(store) = &self.store else { return };
        let body = {
            let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
            if !buffer.dirty {
                return;
            }
            buffer.dirty = false;
            buffer.content.clone()
        };
        let bytes = body.len();
        tracing::debug!(log = store.describe(), bytes, "syncing the job log");
        if let Err(e) = store.put(body).await {
            tracing::warn!(log = store.describe(), error = %e,
                "could not sync the job log; the runner needs s3:PutObject on it (the job goes on)");
        }
    }

    fn append(&self, line: &str) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        if buffer.full {
            return;
        }
        let timestamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let mut entry = serde_json::json!({ "timestamp": timestamp, "data": line }).to_string();
        if buffer.content.len() + entry.len() > self.max_bytes {
            buffer.full = true;
            let note = format!(
                "[attini-runner] the log is larger than {} bytes; later lines are in CloudWatch only",
                self.max_bytes
            );
            entry = serde_json::json!({ "timestamp": timestamp, "data": note }).to_string();
        }
        buffer.content.extend_from_slice(entry.as_bytes());
        buffer.content.push(b'\n');
        buffer.dirty = true;
        drop(buffer);
        self.changed.notify_one();
    }
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

    /// Stops the periodic uploads and uploads whatever is new.
    pub async fn finish(mut self) {
        if let Some(uploader) = self.uploader.take() {
            uploader.abort();
            let _ = uploader.await;
            // An upload cut off by the abort may have cleared `dirty`: always upload last.
            self.log
                .buffer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .dirty = true;
        }
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
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use tokio::time::Instant;

    /// Records each stored body with the (paused) time it was stored.
    #[derive(Default)]
    struct Recorder(StdMutex<Vec<(Instant, String)>>);

    impl LogStore for Recorder {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn put(&self, body: Vec<u8>) -> PutFuture<'_> {
            let text = String::from_utf8(body).unwrap();
            self.0.lock().unwrap().push((Instant::now(), text));
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_log_object_stops_at_its_limit_with_a_note() {
        let store = Arc::new(Recorder::default());
        let log =
            JobLog::start_with_limit("s".into(), Some(store.clone() as Arc<dyn LogStore>), 300);
        let sink = log.sink();
        for i in 0..20 {
            sink.line(&format!("line number {i:02}"));
        }
        log.finish().await;
        let last = store.0.lock().unwrap().last().unwrap().1.clone();
        let lines: Vec<&str> = last.lines().collect();
        assert!(
            last.len() - lines.last().unwrap().len() - 1 <= 300,
            "{last}"
        );
        assert!(
            lines.last().unwrap().contains("larger than 300 bytes"),
            "{last}"
        );
        assert!(lines.len() > 3 && lines.len() < 10, "{last}");
        assert!(lines[0].contains("line number 00"));
        assert_eq!(MAX_LOG_BYTES, 64 * 1024 * 1024);
    }

    #[test]
    fn a_tag_cannot_forge_a_log_line() {
        let log = JobLog::start("step\n[other] forged\r".into(), None);
        assert_eq!(log.sink().tag, "step?[other] forged?");
    }

    #[tokio::test(start_paused = true)]
    async fn lines_are_synced_while_the_job_runs_at_most_every_ten_seconds() {
        let store = Arc::new(Recorder::default());
        let begin = Instant::now();
        let log = JobLog::start("step".into(), Some(store.clone() as Arc<dyn LogStore>));
        let sink = log.sink();
        sink.line("first");
        tokio::time::sleep(Duration::from_secs(1)).await;
        sink.line("second");
        tokio::time::sleep(Duration::from_secs(15)).await;
        sink.line("third");
        log.finish().await;
        let puts = store.0.lock().unwrap().clone();
        let at: Vec<u64> = puts.iter().map(|(t, _)| (*t - begin).as_secs()).collect();
        // At once for the first line, then not before 10 s, then at the end.
        assert_eq!(at, [0, 10, 16], "{puts:?}");
        assert!(puts[0].1.contains("\"data\":\"first\""));
        assert_eq!(puts[1].1.lines().count(), 2);
        assert_eq!(puts[2].1.lines().count(), 3);
    }
}
