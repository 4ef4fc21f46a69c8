//! The loop: take a free slot first, then receive only as many messages as there are free
//! slots (at most 10, long poll up to 20 s, never longer than the idle TTL); each admitted job
//! runs as a tracked task with its own span ([`job_task`](super::job_task)), holding its slot
//! through a [`SlotGuard`] until it has reported.
//!
//! What to do with each message is the [`Policy`]'s decision. A message whose job is already
//! running here (a redelivery) is not started again; one whose job ran here and was answered
//! is deleted. The loop never dies of a transient error: it backs off and polls again. It ends
//! when the shutdown token is cancelled, when the policy or a fatal queue error asks for a
//! shutdown, or after `idle_ttl` without jobs (counted from the end of the last job).
//!
//! Then the drain: no more receiving; a message received while stopping goes straight back to
//! the queue; running jobs get `drain_grace` to finish and report; after that their processes
//! are ended and they are reported as `Runner.Interrupted`. Cancellation: trip `shutdown`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::board::RunningJob;
use super::lease::BatchLease;
use super::parts::Parts;
use super::running::{Seen, SlotGuard};
use super::{
    Admission, Admitted, ErrorClass, Exit, JobRunner, Message, Policy, Queue, TaskTokens,
    WorkerConfig, answer, job_task,
};
use crate::engine::outcome::Report;

/// Longest long poll the queue allows.
const MAX_WAIT: Duration = Duration::from_secs(20);
/// Most messages one receive returns.
const MAX_BATCH: usize = 10;
/// One run of the loop.
pub struct Poll<Q, T, R> {
    parts: Arc<Parts<Q, T, R>>,
    config: WorkerConfig,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    /// Tripped when the drain grace is over: running jobs are ended.
    kill: CancellationToken,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> Poll<Q, T, R> {
    /// A loop over `parts` with `config`.
    pub fn new(parts: Arc<Parts<Q, T, R>>, config: WorkerConfig) -> Self {
        Poll {
            parts,
            slots: Arc::new(Semaphore::new(config.max_jobs.max(1))),
            config,
            tracker: TaskTracker::new(),
            kill: CancellationToken::new(),
        }
    }

    /// Runs the loop until it ends, then drains; see the module documentation.
    pub async fn run<P: Policy>(self, policy: Arc<P>, shutdown: CancellationToken) -> Exit {
        let stats = &self.parts.stats;
        stats.slots.store(self.config.max_jobs, Ordering::Relaxed);
        crate::metrics::get().set_slots(self.running(), self.config.max_jobs);
        crate::metrics::get().set_draining(false);
        stats.health.running();
        let mut failures = 0u32;
        let exit = loop {
            stats.health.beat();
            let idle_left = self.idle_left();
            if idle_left == Some(Duration::ZERO) && self.running() == 0 {
                break Exit::Idle;
            }
            let Some(mut permits) = self.beating(self.take_slots(&shutdown)).await else {
                break Exit::Requested;
            };
            let receive = self
                .parts
                .queue
                .receive(permits.len(), self.poll_wait(idle_left));
            let received = tokio::select! {
                r = self.beating(receive) => r,
                _ = shutdown.cancelled() => break Exit::Requested,
            };
            let messages = match received {
                Ok(messages) => {
                    stats.health.receive_ok();
                    failures = 0;
                    messages
                }
                Err(e) if matches!(e.class, ErrorClass::Missing | ErrorClass::Denied) => {
                    let queue = self.parts.queue.name();
                    break Exit::Stopped(format!("the queue {queue} cannot be used: {e}"));
                }
                Err(e) => {
                    stats.health.receive_failed(&e.to_string());
                    failures = (failures + 1).min(8);
                    let delay = Duration::from_millis(250 << failures).min(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "receiving from the queue failed; retrying");
                    tokio::select! { _ = sleep(delay) => {}, _ = shutdown.cancelled() => break Exit::Requested }
                    continue;
                }
            };
            let batch = self.handle_batch(&*policy, messages, &mut permits, &shutdown);
            if let Some(reason) = self.beating(batch).await {
                break Exit::Stopped(reason);
            }
        };
        stats.health.draining();
        crate::metrics::get().set_draining(true);
        self.beating(self.drain()).await;
        stats.health.stopped();
        exit
    }

    /// Runs `work` while beating the loop's health ([`Health::beating`]).
    async fn beating<F: std::future::Future>(&self, work: F) -> F::Output {
        self.parts.stats.health.beating(work).await
    }

    fn running(&self) -> usize {
        *self.parts.stats.running.borrow()
    }

    /// Time left before the idle TTL fires (`None`: no TTL).
    fn idle_left(&self) -> Option<Duration> {
        let since = self.parts.last_end.elapsed();
        self.config.idle_ttl.map(|ttl| ttl.saturating_sub(since))
    }

    /// As the Attini Runner: never wait longer than the idle TTL, so that an idle runner
    /// notices its TTL soon after its last job ended.
    fn poll_wait(&self, idle_left: Option<Duration>) -> Duration {
        match (self.config.idle_ttl, idle_left) {
            (Some(ttl), Some(left)) if self.running() == 0 => left.min(ttl).min(MAX_WAIT),
            (Some(ttl), _) => ttl.min(MAX_WAIT),
            (None, _) => MAX_WAIT,
        }
    }

    /// Waits for one free slot, then takes every other free one (up to a batch); `None` when
    /// shutdown came first.
    async fn take_slots(&self, shutdown: &CancellationToken) -> Option<Vec<OwnedSemaphorePermit>> {
        let first = tokio::select! {
            permit = self.slots.clone().acquire_owned() => permit.ok()?,
            _ = shutdown.cancelled() => return None,
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

    /// Acts on each received message; returns why the runner must stop, if it must. The
    /// messages waiting for their turn keep their lease.
    async fn handle_batch<P: Policy>(
        &self,
        policy: &P,
        messages: Vec<Message>,
        permits: &mut Vec<OwnedSemaphorePermit>,
        shutdown: &CancellationToken,
    ) -> Option<String> {
        let mut stop = None;
        let receipts = messages.iter().map(|m| m.receipt.clone()).collect();
        let waiting = BatchLease::start(self.parts.queue.clone(), self.parts.lease, receipts);
        for message in messages {
            if let Some(waited) = message
                .sent
                .and_then(|s| SystemTime::now().duration_since(s).ok())
            {
                crate::metrics::get().queue_waited(waited);
            }
            let receipt = message.receipt.clone();
            if stop.is_some() || shutdown.is_cancelled() {
                self.give_back(&message, "the runner is stopping").await;
            } else if !self.is_known(&message).await {
                stop = self.handle(policy, message, permits).await;
            }
            waiting.handled(&receipt);
        }
        stop
    }

    /// Acts on one new message as the policy decides; returns why the runner must stop, if
    /// it must.
    async fn handle<P: Policy>(
        &self,
        policy: &P,
        message: Message,
        permits: &mut Vec<OwnedSemaphorePermit>,
    ) -> Option<String> {
        let span = super::trace::job_span(&message);
        let admission = policy
            .admit(&message)
            .instrument(tracing::debug_span!(parent: &span, "receive"))
            .await;
        let outcome = match &admission {
            Admission::Run(_) => "",
            Admission::Leave(_) => "left",
            Admission::Delete(_) => "deleted",
            Admission::Fail { .. } | Admission::FailAndShutdown { .. } => "refused",
            Admission::Shutdown(_) => "shutdown",
        };
        if !outcome.is_empty() {
            span.record("outcome", outcome);
        }
        match admission {
            Admission::Run(admitted) => match permits.pop() {
                Some(permit) => self.start(*admitted, message, permit, span).await,
                None => {
                    self.give_back(&message, "more messages than free slots")
                        .await
                }
            },
            Admission::Leave(reason) => {
                tracing::info!(message_id = message.id, reason, "message left in the queue")
            }
            Admission::Delete(reason) => {
                tracing::error!(
                    message_id = message.id,
                    reason,
                    "message deleted without an answer"
                );
                let _ = self.parts.delete(&message.receipt).await;
            }
            Admission::Fail { token, report } => self.refuse(&message, &token, &report).await,
            Admission::FailAndShutdown {
                token,
                report,
                reason,
            } => {
                self.refuse(&message, &token, &report).await;
                return Some(reason);
            }
            Admission::Shutdown(reason) => return Some(reason),
        }
        None
    }

    /// Starts an admitted job as a tracked task holding `permit`.
    async fn start(
        &self,
        admitted: Admitted,
        message: Message,
        permit: OwnedSemaphorePermit,
        span: tracing::Span,
    ) {
        let parts = &self.parts;
        if parts.lease.is_none()
            && let Err(e) = parts.delete(&message.receipt).await
        {
            tracing::error!(message_id = message.id, error = %e, "could not delete the message; not running it now (it will reappear)");
            return;
        }
        let receipt = parts.registry.start(&message.id, &message.receipt);
        let guard = SlotGuard::new(
            &message.id,
            parts.registry.clone(),
            parts.stats.clone(),
            parts.last_end.clone(),
            permit,
        );
        let job = RunningJob::admitted(&message, &admitted, &span);
        parts.stats.board.add(job.clone());
        let task = job_task::JobTask {
            parts: parts.clone(),
            admitted,
            message,
            receipt,
            kill: self.kill.clone(),
            job,
        };
        self.tracker.spawn(task.run(guard).instrument(span));
    }

    /// Waits for running jobs up to the drain grace, then ends them.
    async fn drain(&self) {
        self.tracker.close();
        if self.tracker.is_empty() {
            return;
        }
        let grace = self.parts.drain_grace;
        tracing::info!(
            running = self.running(),
            grace_s = grace.as_secs(),
            "draining: waiting for running jobs to finish"
        );
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

    /// Puts a message back in the queue at once (lease mode), or leaves it to reappear.
    async fn give_back(&self, message: &Message, why: &str) {
        tracing::info!(
            message_id = message.id,
            why,
            "message given back to the queue"
        );
        if self.parts.lease.is_some()
            && let Err(e) = self.parts.queue.release(&message.receipt).await
        {
            tracing::warn!(message_id = message.id, error = %e, "could not give the message back; it reappears after its visibility timeout");
        }
    }

    /// Answers a refused job with its failure and deletes its message once the answer was
    /// accepted (or the token is known closed).
    async fn refuse(&self, message: &Message, token: &str, report: &Report) {
        if let Report::Failure { error, cause } = report {
            tracing::error!(message_id = message.id, error, cause, "job refused");
        }
        let delivery = answer::deliver(&*self.parts.tokens, token, report).await;
        if !delivery.is_answered() {
            tracing::error!(
                message_id = message.id,
                "the refusal was not delivered: the message stays and is refused again when it comes back"
            );
            return;
        }
        if let Err(e) = self.parts.delete(&message.receipt).await {
            tracing::error!(message_id = message.id, error = %e, "could not delete the refused message");
        }
    }
}
