//! Whether the warm loop is alive and ready, as the ops server tells ECS and operators.
//!
//! Alive: the loop beats at least every [`BEAT_EVERY`] while it runs (also while it waits
//! for a slot, a receive or a drain); a beat older than [`LIVENESS_BOUND`] means its task is
//! stuck or starved. Before the loop starts and after it ends the runner counts as alive.
//! Ready: the loop runs, is not draining, and the queue has not been failing for longer
//! than [`UNREACHABLE_BOUND`]. Never calls AWS. Plain atomics and one mutex; nothing to
//! cancel.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How often the loop beats while it waits.
pub const BEAT_EVERY: Duration = Duration::from_secs(5);
/// A beat older than this means the loop is not alive.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(30);
/// Receiving may fail this long (retrying) before the runner says it is not ready.
pub const UNREACHABLE_BOUND: Duration = Duration::from_secs(60);

const STARTING: u8 = 0;
const RUNNING: u8 = 1;
const DRAINING: u8 = 2;
const STOPPED: u8 = 3;

/// The loop's health; one per worker, in its [`Stats`](super::Stats).
#[derive(Debug)]
pub struct Health {
    origin: Instant,
    phase: AtomicU8,
    /// Milliseconds from `origin` to the last beat.
    beat: AtomicU64,
    /// Since when receiving fails, and the last error; `None` when the last receive worked.
    failing: Mutex<Option<(Instant, String)>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            origin: Instant::now(),
            phase: AtomicU8::new(STARTING),
            beat: AtomicU64::new(0),
            failing: Mutex::new(None),
        }
    }
}

impl Health {
    /// The loop is alive now.
    pub fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.beat.store(ms, Ordering::Relaxed);
    }

    /// The loop started (startup is done).
    pub fn running(&self) {
        self.beat();
        self.phase.store(RUNNING, Ordering::Relaxed);
    }

    /// The loop takes no more jobs; running ones drain.
    pub fn draining(&self) {
        self.beat();
        self.phase.store(DRAINING, Ordering::Relaxed);
    }

    /// The loop has ended; the process exits soon.
    pub fn stopped(&self) {
        self.phase.store(STOPPED, Ordering::Relaxed);
    }

    /// A receive worked.
    pub fn receive_ok(&self) {
        *lock(&self.failing) = None;
    }

    /// A receive failed with `error`.
    pub fn receive_failed(&self, error: &str) {
        let mut failing = lock(&self.failing);
        let since = failing.as_ref().map_or_else(Instant::now, |(at, _)| *at);
        *failing = Some((since, error.to_string()));
    }

    /// Runs `work` and beats every [`BEAT_EVERY`] while it waits: the loop is alive as long
    /// as its task is polled.
    pub async fn beating<F: std::future::Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                out = &mut work => return out,
                _ = tokio::time::sleep(BEAT_EVERY) => self.beat(),
            }
        }
    }

    /// `Ok` while alive, else why not.
    pub fn live(&self) -> Result<(), NotReady> {
        if self.phase.load(Ordering::Relaxed) != RUNNING
            && self.phase.load(Ordering::Relaxed) != DRAINING
        {
            return Ok(());
        }
        let beat = self.origin + Duration::from_millis(self.beat.load(Ordering::Relaxed));
        let quiet = beat.elapsed();
        if quiet > LIVENESS_BOUND {
            return Err(NotReady::Stalled {
                quiet_s: quiet.as_secs(),
                bound_s: LIVENESS_BOUND.as_secs(),
            });
        }
        Ok(())
    }

    /// `Ok` while ready for jobs, else why not.
    pub fn ready(&self) -> Result<(), NotReady> {
        match self.phase.load(Ordering::Relaxed) {
            STARTING => return Err(NotReady::Starting),
            DRAINING => return Err(NotReady::Draining),
            STOPPED => return Err(NotReady::Stopped),
            _ => {}
        }
        self.live()?;
        if let Some((since, error)) = lock(&self.failing).as_ref() {
            let failing = since.elapsed();
            if failing > UNREACHABLE_BOUND {
                return Err(NotReady::QueueUnreachable {
                    for_s: failing.as_secs(),
                    error: error.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why the runner is not alive or not ready, as `/livez` and `/readyz` say it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The loop has not started yet.
    #[error("starting")]
    Starting,
    /// No new jobs are taken.
    #[error("draining: no new jobs are taken")]
    Draining,
    /// The loop ended.
    #[error("stopped")]
    Stopped,
    /// The loop has not beaten for too long.
    #[error("the worker loop has not run for {quiet_s} s (bound {bound_s} s)")]
    Stalled {
        /// Seconds since its last beat.
        quiet_s: u64,
        /// The bound, in seconds.
        bound_s: u64,
    },
    /// Receiving has failed for too long.
    #[error("the queue has been unreachable for {for_s} s: {error}")]
    QueueUnreachable {
        /// For how long, in seconds.
        for_s: u64,
        /// The last error.
        error: String,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_only_while_running_with_a_reachable_queue() {
        let h = Health::default();
        assert_eq!(h.ready(), Err(NotReady::Starting));
        assert_eq!(h.live(), Ok(()), "alive while starting");
        h.running();
        assert_eq!(h.ready(), Ok(()));
        h.receive_failed("dispatch failure");
        tokio::time::advance(Duration::from_secs(20)).await;
        h.beat();
        h.receive_failed("timeout");
        assert_eq!(h.ready(), Ok(()), "a short outage is retried, still ready");
        tokio::time::advance(UNREACHABLE_BOUND).await;
        h.beat();
        let reason = h.ready().unwrap_err().to_string();
        assert!(reason.contains("unreachable for 80 s: timeout"), "{reason}");
        h.receive_ok();
        assert_eq!(h.ready(), Ok(()));
        h.draining();
        assert_eq!(
            h.ready().unwrap_err().to_string(),
            "draining: no new jobs are taken"
        );
        assert_eq!(h.live(), Ok(()));
        h.stopped();
        assert_eq!(h.ready(), Err(NotReady::Stopped));
        tokio::time::advance(LIVENESS_BOUND * 2).await;
        assert_eq!(
            h.live(),
            Ok(()),
            "alive until the process exits, beats or not"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_failing_for_exactly_the_bound_still_counts_as_ready() {
        let h = Health::default();
        h.running();
        h.receive_failed("dispatch failure");
        tokio::time::advance(UNREACHABLE_BOUND).await;
        h.beat();
        assert_eq!(h.ready(), Ok(()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(matches!(h.ready(), Err(NotReady::QueueUnreachable { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_stops_beating_is_not_alive() {
        let h = Health::default();
        h.running();
        tokio::time::advance(LIVENESS_BOUND).await;
        assert_eq!(h.live(), Ok(()));
        tokio::time::advance(Duration::from_secs(2)).await;
        let reason = h.live().unwrap_err().to_string();
        assert!(reason.contains("not run for 32 s"), "{reason}");
        assert!(h.ready().is_err());
        h.beat();
        assert_eq!(h.live(), Ok(()));
    }
}
