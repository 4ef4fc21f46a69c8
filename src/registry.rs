//! Which messages this runner is running or has finished, so that a message delivered again
//! (its lease ran out during an AWS outage, say) never starts its job a second time. Pure
//! bookkeeping behind a mutex; nothing to cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a finished job's message id is remembered: longer than any visibility timeout
/// under which its message could still come back (SQS allows up to 12 h).
pub const REMEMBER: Duration = Duration::from_secs(12 * 3600);

/// The newest receipt handle of a running job's message (a redelivery replaces it).
pub type Receipt = Arc<Mutex<String>>;

/// What a received message is to this runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Never seen, or its job failed to report: run it.
    New,
    /// Its job runs here now; the lease took the new receipt handle.
    Running,
    /// Its job ran here and was answered: delete the message.
    Finished,
}

/// The registry; share it between the loop and the job tasks.
#[derive(Debug, Default)]
pub struct Registry {
    running: Mutex<HashMap<String, Receipt>>,
    finished: Mutex<HashMap<String, Instant>>,
}

impl Registry {
    /// Records that the job of message `id` starts; returns its receipt cell.
    pub fn start(&self, id: &str, receipt: &str) -> Receipt {
        let cell: Receipt = Arc::new(Mutex::new(receipt.to_string()));
        lock(&self.running).insert(id.to_string(), cell.clone());
        cell
    }

    /// What message `id`, received with `receipt`, is.
    pub fn seen(&self, id: &str, receipt: &str) -> Seen {
        if let Some(cell) = lock(&self.running).get(id) {
            *lock(cell) = receipt.to_string();
            return Seen::Running;
        }
        if lock(&self.finished).contains_key(id) {
            return Seen::Finished;
        }
        Seen::New
    }

    /// Records that the job of message `id` ended; `answered` when Step Functions got its
    /// answer (or the task was gone), so that a redelivery is deleted rather than run.
    pub fn finish(&self, id: &str, answered: bool) {
        lock(&self.running).remove(id);
        if answered {
            let mut finished = lock(&self.finished);
            let now = Instant::now();
            finished.retain(|_, at| now.duration_since(*at) < REMEMBER);
            finished.insert(id.to_string(), now);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeliveries_are_recognised() {
        let r = Registry::default();
        assert_eq!(r.seen("m1", "r1"), Seen::New);
        let cell = r.start("m1", "r1");
        assert_eq!(r.seen("m1", "r2"), Seen::Running);
        assert_eq!(*cell.lock().unwrap(), "r2");
        r.finish("m1", true);
        assert_eq!(r.seen("m1", "r3"), Seen::Finished);
        r.start("m2", "x");
        r.finish("m2", false);
        assert_eq!(r.seen("m2", "y"), Seen::New);
    }
}
