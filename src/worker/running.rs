//! Which messages this runner is running or has finished, so that a message delivered again
//! (its lease ran out during an AWS outage, say) never starts its job a second time; and the
//! [`SlotGuard`] each job task holds, which frees the job's slot, its registry and board
//! entries and its running count (and the slot metrics) in `Drop`, so a panic or an early
//! return cannot leak capacity or keep the idle TTL from firing. A job whose processes are
//! done frees its slot early and reports from one of a bounded number of report places
//! ([`SlotGuard::free_slot_for_report`]). Bookkeeping behind mutexes; waiting for a report
//! place is the only await, and dropping it keeps the slot.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::Stats;

/// How long a finished job's message id is remembered: longer than any visibility timeout
/// under which its message could still come back (SQS allows up to 12 h).
pub const REMEMBER: Duration = Duration::from_secs(12 * 3600);
/// Most finished message ids remembered (the oldest are forgotten first): about 10 MiB.
pub const REMEMBER_MOST: usize = 100_000;

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
    finished: Mutex<Finished>,
}

/// Finished message ids, and the order they finished in (for forgetting the oldest).
#[derive(Debug, Default)]
struct Finished {
    ids: HashSet<String>,
    order: VecDeque<(std::time::Instant, String)>,
}

impl Finished {
    /// Remembers `id`, forgetting ids older than [`REMEMBER`] and the oldest beyond
    /// [`REMEMBER_MOST`]; each id is forgotten once, so this costs O(1) amortised.
    fn insert(&mut self, id: &str, now: std::time::Instant, most: usize) {
        if self.ids.contains(id) {
            return;
        }
        while let Some((at, old)) = self.order.front() {
            if now.duration_since(*at) < REMEMBER && self.order.len() < most {
                break;
            }
            self.ids.remove(old);
            self.order.pop_front();
        }
        self.ids.insert(id.to_string());
        self.order.push_back((now, id.to_string()));
    }
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
        if lock(&self.finished).ids.contains(id) {
            return Seen::Finished;
        }
        Seen::New
    }

    /// Records that the job of message `id` ended; `answered` when Step Functions got its
    /// answer (or the task was gone), so that a redelivery is deleted rather than run.
    pub fn finish(&self, id: &str, answered: bool) {
        lock(&self.running).remove(id);
        if answered {
            let now = std::time::Instant::now();
            lock(&self.finished).insert(id, now, REMEMBER_MOST);
        }
    }
}

/// When the last job ended, for the idle TTL.
#[derive(Debug)]
pub struct LastEnd(Mutex<Instant>);

impl Default for LastEnd {
    fn default() -> Self {
        LastEnd(Mutex::new(Instant::now()))
    }
}

impl LastEnd {
    /// Time since the last job ended (or since the worker started).
    pub fn elapsed(&self) -> Duration {
        lock(&self.0).elapsed()
    }

    fn touch(&self) {
        *lock(&self.0) = Instant::now();
    }
}

/// Held by a running job's task: its slot, its registry entry, its running count.
pub struct SlotGuard {
    id: String,
    registry: Arc<Registry>,
    stats: Arc<Stats>,
    last_end: Arc<LastEnd>,
    answered: bool,
    /// The job's slot, until [`SlotGuard::free_slot_for_report`] trades it for a report place.
    slot: Option<OwnedSemaphorePermit>,
    /// The worker's report places (as many as slots).
    reports: Arc<Semaphore>,
    /// This job's report place, once it holds one.
    report: Option<OwnedSemaphorePermit>,
}

impl SlotGuard {
    /// Registers the job of message `id` as running in the slot `permit`, counted in `stats`;
    /// `reports` are the worker's report places ([`SlotGuard::free_slot_for_report`]).
    pub fn new(
        id: &str,
        registry: Arc<Registry>,
        stats: Arc<Stats>,
        last_end: Arc<LastEnd>,
        permit: OwnedSemaphorePermit,
        reports: Arc<Semaphore>,
    ) -> Self {
        stats.figures.slots.started();
        SlotGuard {
            id: id.to_string(),
            registry,
            stats,
            last_end,
            answered: false,
            slot: Some(permit),
            reports,
            report: None,
        }
    }

    /// Frees the job's slot once its processes are done and only its answer (and its
    /// message's delete) is left, so that the next job starts while this one reports. It
    /// takes one of the report places first: as many as slots, so a slow or failing Step
    /// Functions holds at most that many answers in flight beyond the running jobs, and past
    /// that the slots wait for the reports again. The board and the registry keep the job
    /// until it is answered (`Drop`).
    pub async fn free_slot_for_report(&mut self) {
        if self.slot.is_none() {
            return;
        }
        // The places are never closed; if they were, the job would report in its slot.
        let Ok(place) = self.reports.clone().acquire_owned().await else {
            return;
        };
        self.report = Some(place);
        self.slot = None;
        self.stats.figures.slots.ended();
        // The idle TTL counts from here too: no job runs once this one's slot is free.
        self.last_end.touch();
    }

    /// Records that Step Functions got the job's answer (or the task was gone), so that a
    /// redelivery of its message is deleted rather than run.
    pub fn set_answered(&mut self) {
        self.answered = true;
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.registry.finish(&self.id, self.answered);
        self.last_end.touch();
        self.stats.board.remove(&self.id);
        // Every guard started one in `new`, and `free_slot_for_report` ended it with the slot.
        if self.slot.is_some() {
            self.stats.figures.slots.ended();
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

    #[test]
    fn finished_ids_are_forgotten_oldest_first_beyond_the_bound_and_after_twelve_hours() {
        let mut finished = Finished::default();
        let start = std::time::Instant::now();
        for i in 0..5 {
            finished.insert(&format!("m{i}"), start, 3);
        }
        assert_eq!(finished.order.len(), 3);
        assert!(!finished.ids.contains("m1") && finished.ids.contains("m4"));
        finished.insert("m4", start, 3);
        assert_eq!(finished.order.len(), 3, "an id is remembered once");
        let twelve_hours = Duration::from_secs(12 * 3600);
        finished.insert("almost", start + twelve_hours - Duration::from_secs(1), 3);
        assert!(finished.ids.contains("m4"), "forgotten before twelve hours");
        finished.insert("late", start + twelve_hours, 3);
        assert_eq!(finished.ids.len(), 2, "{:?}", finished.ids);
        assert!(finished.ids.contains("late") && finished.ids.contains("almost"));
    }
}
