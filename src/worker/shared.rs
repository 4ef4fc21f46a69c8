//! What the loop and every message task of one worker share ([`Parts`]): the queue, the task
//! tokens, the job runner, the lease, the counters, the registry of running messages and the
//! stop request. Plain data plus the retried delete and the give-back; nothing to cancel
//! beyond dropping a call.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::running::{LastEnd, Registry};
use tokio_util::sync::CancellationToken;

use super::{JobRunner, Message, Queue, Stats, TaskTokens, WorkerConfig};
use crate::calls;

/// How long deleting a message is retried through transient errors.
pub const DELETE_DEADLINE: Duration = Duration::from_secs(60);

/// What the loop and every job task share.
pub struct Parts<Q, T, R> {
    /// Runs jobs.
    pub runner: Arc<R>,
    /// The job queue.
    pub queue: Arc<Q>,
    /// Task tokens.
    pub tokens: Arc<T>,
    /// The visibility timeout in lease mode; `None`: messages are deleted before jobs run.
    pub lease: Option<Duration>,
    /// Cleared when the role turns out to lack `states:SendTaskHeartbeat`.
    pub heartbeats: AtomicBool,
    /// Counters.
    pub stats: Arc<Stats>,
    /// When the last job ended (for the idle TTL).
    pub last_end: Arc<LastEnd>,
    /// Drain grace, quoted in the cause of an interrupted job.
    pub drain_grace: Duration,
    /// How long reports are retried.
    pub report_retries: super::answer::Retries,
    /// Longest a message may stay in flight from its receipt.
    pub max_lease: Duration,
    /// The messages running and finished here.
    pub registry: Arc<Registry>,
    /// A message's task asks the loop to stop here (the policy's shutdown).
    pub stop: StopRequest,
    /// Counts runner-side failures in a row.
    pub breaker: super::breaker::Breaker,
    /// How long each job ran here lately (the drain's expectations).
    pub durations: super::durations::Durations,
    /// The lock table and the lease of its entries, when the runner has one.
    pub locks: Option<(Arc<dyn super::locks::LockStore>, Duration)>,
}

/// A request from a message's task that the runner stop, with the reason; the first wins.
#[derive(Debug, Default)]
pub struct StopRequest {
    requested: CancellationToken,
    reason: std::sync::Mutex<Option<String>>,
    broken: AtomicBool,
}

impl StopRequest {
    /// Asks the loop to stop for `reason` (kept only if it is the first).
    pub fn request(&self, reason: String) {
        let mut first = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(reason);
        self.requested.cancel();
    }

    /// Asks the loop to stop because the runner is broken ([`super::breaker`]).
    pub fn request_broken(&self, reason: String) {
        self.broken.store(true, std::sync::atomic::Ordering::SeqCst);
        self.request(reason);
    }

    /// True when the stop was asked because the runner is broken.
    pub fn is_broken(&self) -> bool {
        self.broken.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts `report` in `breaker` and, when it trips, asks the loop to stop as broken.
    pub fn count(
        &self,
        breaker: &super::breaker::Breaker,
        report: &crate::engine::outcome::Report,
    ) {
        if let Some(reason) = breaker.record(report) {
            tracing::error!(
                reason,
                "stopping: the runner is broken; its task should be replaced"
            );
            self.request_broken(reason);
        }
    }

    /// Resolves once a stop was requested; the reason.
    pub async fn requested(&self) -> String {
        self.requested.cancelled().await;
        let reason = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        reason.clone().unwrap_or_default()
    }
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> Parts<Q, T, R> {
    /// The parts of a worker; `lease` as found by [`Queue::lease`].
    pub fn new(
        runner: Arc<R>,
        queue: Arc<Q>,
        tokens: Arc<T>,
        lease: Option<Duration>,
        stats: Arc<Stats>,
        config: &WorkerConfig,
    ) -> Self {
        Parts {
            runner,
            queue,
            tokens,
            lease,
            heartbeats: AtomicBool::new(true),
            stats,
            last_end: Arc::default(),
            drain_grace: config.drain_grace,
            report_retries: config.report_retries,
            max_lease: config.max_lease,
            registry: Arc::default(),
            stop: StopRequest::default(),
            breaker: super::breaker::Breaker::new(config.max_runner_failures),
            durations: Default::default(),
            locks: None,
        }
    }

    /// Puts a message back in the queue at once (lease mode), or leaves it to reappear.
    pub async fn give_back(&self, message: &Message, why: &str) {
        tracing::info!(
            message_id = message.id,
            why,
            "message given back to the queue"
        );
        if self.lease.is_some()
            && let Err(e) = self.queue.release(&message.receipt).await
        {
            tracing::warn!(message_id = message.id, error = %e, "could not give the message back; it reappears after its visibility timeout");
        }
    }

    /// Deletes a message, retrying transient errors for up to [`DELETE_DEADLINE`].
    pub async fn delete(&self, receipt: &str) -> Result<(), calls::CallError> {
        calls::with_backoff(DELETE_DEADLINE, || self.queue.delete(receipt)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_stop_reason_wins_and_says_whether_the_runner_is_broken() {
        let stop = StopRequest::default();
        stop.request("another runner took over".into());
        stop.request_broken("five failures".into());
        assert_eq!(stop.requested().await, "another runner took over");
        assert!(stop.is_broken());
        let plain = StopRequest::default();
        plain.request("told to".into());
        assert!(!plain.is_broken());
    }
}
