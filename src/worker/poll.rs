//! The loop only receives and dispatches: take a free slot first, then receive only as many
//! messages as there are free slots (at most 10, long poll up to 20 s, never longer than the
//! idle TTL); a message whose job is already running here (a redelivery) is not started again,
//! one whose job ran here and was answered is deleted, and every other one goes with its slot
//! to a tracked task of its own ([`message_task`](super::message_task)), where the
//! [`Policy`] admits it and its job runs or its refusal is answered. No call of the policy
//! runs in the loop, so a slow admission holds only its own slot.
//!
//! The loop never dies of a transient error: it backs off and polls again. It ends when the
//! shutdown token is cancelled, when a message's task asks for a shutdown (the policy, a fatal
//! refusal), when the queue cannot be used, or after `idle_ttl` without jobs or admissions
//! (counted from the end of the last job).
//!
//! Then the drain: no more receiving (a receive in flight is not dropped: what it still
//! brings goes back to the queue at once, [`InFlight`]); admissions and refusals in progress
//! stop and their messages go back to the queue; running jobs get `drain_grace` to finish and report; after
//! that their processes are ended and they are reported as `Runner.Interrupted`.
//! Cancellation: trip `shutdown`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::drain_plan;
use super::in_flight::InFlight;
use super::message_task::MessageTask;
use super::running::Seen;
use super::shared::Parts;
use super::{ErrorClass, Exit, JobRunner, Message, Policy, Queue, TaskTokens, WorkerConfig};

/// Longest long poll the queue allows.
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// Most messages one receive returns.
const MAX_BATCH: usize = 10;
/// One run of the loop.
pub struct Poll<Q, T, R> {
    parts: Arc<Parts<Q, T, R>>,
    config: WorkerConfig,
    slots: Arc<Semaphore>,
    /// Places for jobs that are done and reporting (as many as slots; see
    /// [`SlotGuard::free_slot_for_report`](super::running::SlotGuard::free_slot_for_report)).
    reports: Arc<Semaphore>,
    tracker: TaskTracker,
    /// The receives in flight ([`InFlight`]), waited for before the loop's end.
    polls: TaskTracker,
    /// Tripped when the drain grace is over: running jobs are ended.
    kill: CancellationToken,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> Poll<Q, T, R> {
    /// A loop over `parts` with `config`.
    pub fn new(parts: Arc<Parts<Q, T, R>>, config: WorkerConfig) -> Self {
        Poll {
            parts,
            slots: Arc::new(Semaphore::new(config.max_jobs.max(1))),
            reports: Arc::new(Semaphore::new(config.max_jobs.max(1))),
            config,
            tracker: TaskTracker::new(),
            polls: TaskTracker::new(),
            kill: CancellationToken::new(),
        }
    }

    /// Runs the loop until it ends, then drains; see the module documentation.
    pub async fn run<P: Policy>(self, policy: Arc<P>, shutdown: CancellationToken) -> Exit {
        let stats = &self.parts.stats;
        stats.figures.slots.set_total(self.config.max_jobs);
        stats.figures.set_draining(false);
        stats.health.running();
        // Tripped by the shutdown token, or when the loop ends for another reason.
        let stopping = shutdown.child_token();
        let exit = tokio::select! {
            exit = self.receive_loop(&policy, &shutdown, &stopping) => exit,
            reason = self.parts.stop.requested() => match self.parts.stop.is_broken() {
                true => {
                    stats.figures.set_broken();
                    Exit::Broken(reason)
                }
                false => Exit::Stopped(reason),
            },
        };
        stopping.cancel();
        stats.health.draining();
        stats.figures.set_draining(true);
        self.beating(self.drain()).await;
        self.beating(self.last_poll()).await;
        stats.health.stopped();
        exit
    }

    /// Receives and dispatches until the shutdown, the idle TTL or an unusable queue.
    async fn receive_loop<P: Policy>(
        &self,
        policy: &Arc<P>,
        shutdown: &CancellationToken,
        stopping: &CancellationToken,
    ) -> Exit {
        let stats = &self.parts.stats;
        let mut failures = 0u32;
        loop {
            stats.health.beat();
            let idle_left = self.idle_left();
            let busy = self.running() + stats.admitting.load(Ordering::SeqCst);
            if idle_left == Some(Duration::ZERO) && busy == 0 {
                return Exit::Idle;
            }
            let Some(mut permits) = self.beating(self.take_slots(shutdown)).await else {
                return Exit::Requested;
            };
            let wait = self.poll_wait(idle_left);
            let mut receive = InFlight::start(&self.parts, &self.polls, permits.len(), wait);
            let received = tokio::select! {
                biased;
                r = self.beating(receive.received()) => r,
                // The poll goes on in its task; what it brings goes back (InFlight).
                _ = shutdown.cancelled() => return Exit::Requested,
            };
            match received {
                Ok(messages) => {
                    stats.health.receive_ok();
                    failures = 0;
                    for message in messages {
                        self.dispatch(policy, message, &mut permits, stopping).await;
                    }
                }
                Err(e) if matches!(e.class, ErrorClass::Missing | ErrorClass::Denied) => {
                    let queue = self.parts.queue.name();
                    return Exit::Stopped(format!("the queue {queue} cannot be used: {e}"));
                }
                Err(e) => {
                    stats.health.receive_failed(&e.to_string());
                    failures = (failures + 1).min(8);
                    let delay = Duration::from_millis(250 << failures).min(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "receiving from the queue failed; retrying");
                    tokio::select! { _ = sleep(delay) => {}, _ = shutdown.cancelled() => return Exit::Requested }
                }
            }
        }
    }

    /// Waits for a receive still in flight, so that what it brings goes back to the queue
    /// before the runner exits (at most the poll's wait, 20 s, and its call's bounds).
    async fn last_poll(&self) {
        self.polls.close();
        if !self.polls.is_empty() {
            tracing::info!(
                "waiting for the last long poll to end, so that a message it brings goes back to the queue at once"
            );
            self.polls.wait().await;
        }
    }

    /// Runs `work` while beating the loop's health ([`Health::beating`]).
    async fn beating<F: std::future::Future>(&self, work: F) -> F::Output {
        self.parts.stats.health.beating(work).await
    }

    fn running(&self) -> usize {
        self.parts.stats.figures.slots.running()
    }

    /// Time left before the idle TTL fires (`None`: no TTL).
    fn idle_left(&self) -> Option<Duration> {
        let since = self.parts.last_end.elapsed();
        self.config.idle_ttl.map(|ttl| ttl.saturating_sub(since))
    }

    /// As the Attini Runner: never wait longer than the idle TTL, so that an idle runner
    /// notices its TTL soon after its last job ended.
    fn poll_wait(&self, idle_left: Option<Duration>) -> Duration {
        let most = self
            .config
            .receive_wait
            .clamp(Duration::from_secs(1), MAX_WAIT);
        match (self.config.idle_ttl, idle_left) {
            (Some(ttl), Some(left)) if self.running() == 0 => left.min(ttl).min(most),
            (Some(ttl), _) => ttl.min(most),
            (None, _) => most,
        }
    }

    /// Waits for one free slot, then takes every other free one (up to a batch); `None` when
    /// shutdown came first.
    async fn take_slots(&self, shutdown: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
        // A stop wins over a free slot: no poll may begin after it (the loop would wait it out).
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return None,
            permit = self.slots.clone().acquire_owned() => permit.ok()?,
        };
        let mut permits = vec![first];
        while permits.len() < MAX_BATCH {
            match self.slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        Some(permits)
    }

    /// Hands a received message with a slot to a task of its own; one whose job runs or ran
    /// here is not started again, and one received while stopping goes back at once.
    async fn dispatch<P: Policy>(
        &self,
        policy: &Arc<P>,
        message: Message,
        permits: &mut Vec<OwnedSemaphorePermit>,
        stopping: &CancellationToken,
    ) {
        if let Some(waited) = message
            .sent
            .and_then(|s| SystemTime::now().duration_since(s).ok())
        {
            self.parts.stats.figures.queue_waited(waited);
        }
        if stopping.is_cancelled() {
            return self
                .parts
                .give_back(&message, "the runner is stopping")
                .await;
        }
        if self.is_known(&message).await {
            return;
        }
        let Some(permit) = permits.pop() else {
            return self
                .parts
                .give_back(&message, "more messages than free slots")
                .await;
        };
        let task = MessageTask {
            parts: self.parts.clone(),
            policy: policy.clone(),
            message,
            permit: Some(permit),
            slots: self.slots.clone(),
            reports: self.reports.clone(),
            stopping: stopping.clone(),
            kill: self.kill.clone(),
        };
        self.tracker.spawn(task.run());
    }

    /// Decides about each running job ([`drain_plan`]), then waits for them up to the drain
    /// grace and ends those still running.
    async fn drain(&self) {
        self.tracker.close();
        if self.tracker.is_empty() {
            return;
        }
        let grace = self.parts.drain_grace;
        tracing::info!(
            running = self.running(),
            grace_s = grace.as_secs(),
            "draining: jobs not started go back, jobs that fit the grace go on, jobs that do not are interrupted now"
        );
        for job in self.parts.stats.board.jobs() {
            let seen = drain_plan::Seen {
                elapsed: job.began.elapsed(),
                phase: job.progress.phase(),
                expected: job.expected,
                interruptible: job.interruptible,
                can_hand_back: self.parts.lease.is_some(),
            };
            let decision = drain_plan::decide(&seen, grace);
            *job.drained.lock().unwrap_or_else(|p| p.into_inner()) = Some(decision);
            tracing::info!(
                message_id = job.message_id,
                job_id = job.job_id,
                step = job.step,
                elapsed_s = seen.elapsed.as_secs(),
                expected_s = job.expected.map(|(d, _)| d.as_secs()),
                expected_from = job
                    .expected
                    .map(|(_, basis)| basis.label())
                    .unwrap_or("unknown"),
                interruptible = job.interruptible,
                decision = decision.label(),
                "drain decision"
            );
            if !matches!(decision, drain_plan::Decision::Continue(_)) {
                job.cancel.cancel();
            }
        }
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.running(),
                "drain grace over: ending the jobs still running; they are reported as Runner.Interrupted"
            );
            self.kill.cancel();
            self.tracker.wait().await;
        }
    }

    /// True when the message's job runs here (the lease takes its new receipt handle) or ran
    /// here already (the message is deleted).
    async fn is_known(&self, message: &Message) -> bool {
        match self.parts.registry.seen(&message.id, &message.receipt) {
            Seen::New => false,
            Seen::Running => {
                tracing::warn!(
                    message_id = message.id,
                    "the message was delivered again while its job runs here; not starting it twice"
                );
                true
            }
            Seen::Finished => {
                tracing::warn!(
                    message_id = message.id,
                    "the message of a job that already ran here came back; deleting it instead of running the job again"
                );
                if let Err(e) = self.parts.delete(&message.receipt).await {
                    tracing::error!(message_id = message.id, error = %e, "could not delete the message");
                }
                true
            }
        }
    }
}
