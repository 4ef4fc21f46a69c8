//! The lease of one message, held from the moment its task starts (before its admission) until
//! the message is gone: every beat (a third of the shortest window to keep alive) extends the
//! message's visibility, in lease mode, and, once the job is admitted ([`Lease::admitted`])
//! and until its report is on its way, sends `SendTaskHeartbeat`. The two calls go out side
//! by side, each bounded to half a beat ([`call_bound`]), so a slow heartbeat cannot starve
//! the extension nor the other way round; a failed or timed-out extension is tried again
//! while a try can still end before the visibility window it keeps alive closes. The heartbeat is the cancel
//! channel: when Step Functions answers that the task is gone (execution stopped or timed
//! out), the job is cancelled and the lease says so. Cancellation: [`Lease::end`] stops the
//! beats, abandoning a call in progress; dropping a [`Lease`] aborts them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::running::Receipt;
use super::shared::Parts;
use super::{ErrorClass, JobRunner, Queue, TaskTokens};

/// Beat interval when neither a lease nor the job asks for a shorter one.
const DEFAULT_BEAT: Duration = Duration::from_secs(30);

/// A running lease; see the module documentation.
pub struct Lease {
    stop: CancellationToken,
    flags: Arc<Flags>,
    beats: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Flags {
    /// Step Functions said the task is gone.
    gone: AtomicBool,
    /// The report is on its way: no more heartbeats (the visibility is still extended).
    reported: AtomicBool,
    /// The message was deleted before the job ended: it reached SQS's cap on a lease.
    released: AtomicBool,
    /// The admitted job's task token and beat interval; heartbeats start once it is set.
    admitted: OnceLock<(String, Duration)>,
    /// Wakes the beats when the job is admitted (its interval may be shorter).
    wake: Notify,
}

impl Lease {
    /// Starts extending the visibility of the message whose newest receipt is `receipt`
    /// (a third of the visibility timeout apart); trips `job_cancel` when the admitted job's
    /// task is gone.
    pub fn start<Q: Queue, T: TaskTokens, R: JobRunner>(
        parts: Arc<Parts<Q, T, R>>,
        receipt: Receipt,
        received: Instant,
        job_cancel: CancellationToken,
    ) -> Lease {
        let stop = CancellationToken::new();
        let flags = Arc::new(Flags::default());
        let interval = beat_interval(parts.lease, None);
        let beat = Beat {
            parts,
            receipt,
            received,
            flags: flags.clone(),
            job_cancel,
        };
        let beats = Some(tokio::spawn(beat.run(interval, stop.clone())));
        Lease { stop, flags, beats }
    }

    /// The job is admitted: heartbeats for `token` start, and beats come every `interval`.
    pub fn admitted(&self, token: String, interval: Duration) {
        let _ = self.flags.admitted.set((token, interval));
        self.flags.wake.notify_one();
    }

    /// True when Step Functions said the task is gone.
    pub fn task_gone(&self) -> bool {
        self.flags.gone.load(Ordering::SeqCst)
    }

    /// True when the message was deleted early, at SQS's cap: there is nothing left to delete.
    pub fn released(&self) -> bool {
        self.flags.released.load(Ordering::SeqCst)
    }

    /// The report is on its way: heartbeats stop, the message's visibility is still extended.
    pub fn reporting(&self) {
        self.flags.reported.store(true, Ordering::SeqCst);
    }

    /// Stops the beats (the message is gone, or left to come back).
    pub async fn end(mut self) {
        self.stop.cancel();
        if let Some(beats) = self.beats.take() {
            let _ = beats.await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(beats) = &self.beats {
            beats.abort();
        }
    }
}

struct Beat<Q, T, R> {
    parts: Arc<Parts<Q, T, R>>,
    receipt: Receipt,
    received: Instant,
    flags: Arc<Flags>,
    job_cancel: CancellationToken,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> Beat<Q, T, R> {
    async fn run(self, admission: Duration, stop: CancellationToken) {
        let mut next = Instant::now() + admission;
        // Until when the message is surely invisible: its receipt, then each extension sent.
        let mut kept_until = self.received + self.parts.lease.unwrap_or_default();
        loop {
            let interval = self.flags.admitted.get().map_or(admission, |(_, i)| *i);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                // Admitted: the job's interval may be shorter; the next beat comes within it.
                _ = self.flags.wake.notified() => {
                    next = next.min(Instant::now() + interval);
                    continue;
                }
                _ = stop.cancelled() => return,
            }
            next = Instant::now() + interval;
            let bound = call_bound(interval);
            let quiet = self.flags.reported.load(Ordering::SeqCst)
                || self.flags.gone.load(Ordering::SeqCst)
                || !self.parts.heartbeats.load(Ordering::Relaxed);
            let heartbeat = async {
                if let (false, Some((token, _))) = (quiet, self.flags.admitted.get()) {
                    self.heartbeat(token, bound).await;
                }
            };
            tokio::select! {
                _ = async { tokio::join!(self.extend(bound, &mut kept_until), heartbeat) } => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Extends the visibility, trying again (each try bounded to `bound`) until it works or
    /// no try would end before the window closes at `kept_until`, which a success moves on.
    async fn extend(&self, bound: Duration, kept_until: &mut Instant) {
        let Some(visibility) = self.parts.lease else {
            return;
        };
        let mut delay = Duration::from_millis(500);
        loop {
            if self.flags.released.load(Ordering::SeqCst) {
                return;
            }
            let current = self
                .receipt
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if self.received.elapsed() + visibility > self.parts.max_lease {
                return self.release(&current).await;
            }
            let sent = Instant::now();
            let tried = tokio::time::timeout(bound, self.parts.queue.extend(&current, visibility));
            let error = match tried.await {
                Ok(Ok(())) => {
                    *kept_until = sent + visibility;
                    return;
                }
                Ok(Err(e)) if !matches!(e.class, ErrorClass::Transient) => {
                    return tracing::warn!(error = %e, "could not extend the message's lease; it may be delivered again");
                }
                Ok(Err(e)) => (e.to_string(), delay),
                // It waited its bound already: try again at once.
                Err(_) => (
                    format!("ChangeMessageVisibility did not answer within {bound:?}"),
                    Duration::ZERO,
                ),
            };
            let (error, pause) = error;
            if Instant::now() + pause + bound > *kept_until {
                return tracing::warn!(
                    error,
                    "could not extend the message's lease before its window closes; it may be delivered again"
                );
            }
            tracing::debug!(
                error,
                retry_in_ms = pause.as_millis() as u64,
                "extending the lease failed; trying again within its window"
            );
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(bound);
        }
    }

    /// SQS will not extend the lease past its cap: the message is deleted before it could
    /// come back and run the job a second time.
    async fn release(&self, receipt: &str) {
        match self.parts.delete(receipt).await {
            Ok(()) => {
                self.flags.released.store(true, Ordering::SeqCst);
                tracing::warn!(
                    max_lease_s = self.parts.max_lease.as_secs(),
                    "the job outlives SQS's cap on a message's lease: its message is deleted now; \
                     from here on only the Step Functions heartbeat notices if this runner dies"
                );
            }
            Err(e) => tracing::warn!(error = %e, "could not delete the message at SQS's lease cap"),
        }
    }

    async fn heartbeat(&self, token: &str, bound: Duration) {
        let sent = tokio::time::timeout(bound, self.parts.tokens.heartbeat(token)).await;
        let e = match sent {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(_) => {
                return tracing::warn!(
                    bound_ms = bound.as_millis() as u64,
                    "heartbeat did not answer in time; trying again on the next beat"
                );
            }
        };
        match e.class {
            ErrorClass::TaskGone => {
                self.flags.gone.store(true, Ordering::SeqCst);
                self.job_cancel.cancel();
            }
            ErrorClass::Denied => {
                if self.parts.heartbeats.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "no states:SendTaskHeartbeat permission: a stopped execution is noticed only when the job reports");
                }
            }
            _ => tracing::warn!(error = %e, "heartbeat failed; trying again on the next beat"),
        }
    }
}

/// How long one extension or heartbeat may take within a beat of `interval`: half of it (at
/// least 500 ms), so that a retry still fits before the window closes.
pub fn call_bound(interval: Duration) -> Duration {
    (interval / 2).max(Duration::from_millis(500))
}

/// A third of the shortest window that must be kept alive (visibility, heartbeat), at least 1 s.
pub fn beat_interval(lease: Option<Duration>, heartbeat: Option<Duration>) -> Duration {
    [lease, heartbeat]
        .into_iter()
        .flatten()
        .map(|d| d / 3)
        .min()
        .unwrap_or(DEFAULT_BEAT)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_come_every_third_of_the_shortest_window() {
        let s = Duration::from_secs;
        assert_eq!(beat_interval(Some(s(15)), None), s(5));
        assert_eq!(beat_interval(Some(s(30)), Some(s(6))), s(2));
        assert_eq!(beat_interval(None, None), DEFAULT_BEAT);
        assert_eq!(beat_interval(Some(s(2)), None), s(1));
    }

    #[test]
    fn a_call_may_take_half_a_beat_and_at_least_half_a_second() {
        let (s, ms) = (Duration::from_secs, Duration::from_millis);
        assert_eq!(call_bound(s(10)), s(5));
        assert_eq!(call_bound(s(1)), ms(500));
        assert_eq!(call_bound(ms(600)), ms(500));
    }
}
