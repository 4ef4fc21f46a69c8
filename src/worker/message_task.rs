//! One received message, on a task of its own from the moment the loop dispatches it: its
//! lease starts at once, the [`Policy`] admits it (parse, ownership, secrets, role,
//! distribution: calls that may take minutes), then the job runs ([`JobTask`]) or the refusal
//! is answered, in parallel with every other message. The task holds its slot until the job's
//! processes are done (its answer then holds a report place instead); the slot counts as a
//! running job only once the job is admitted.
//!
//! Cancellation: `stopping` (a stop signal, the idle TTL, the policy's or a fatal error's
//! shutdown) interrupts an admission or a refusal in progress, and the message goes back to
//! the queue at once, so the drain begins at once; a message whose admission had not begun
//! when the stop came goes back too. `kill` (the drain grace is over) ends a running job.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::board::RunningJob;
use super::job_task::JobTask;
use super::lease::Lease;
use super::locks::{self, Held};
use super::running::SlotGuard;
use super::shared::Parts;
use super::{Admission, JobRunner, Message, Policy, Queue, TaskTokens, answer};
use crate::engine::outcome::Report;

/// One received message and what it needs.
pub struct MessageTask<Q, T, R, P> {
    /// The worker's parts.
    pub parts: Arc<Parts<Q, T, R>>,
    /// Decides about the message.
    pub policy: Arc<P>,
    /// The message.
    pub message: Message,
    /// Its slot (taken by [`MessageTask::run`]).
    pub permit: Option<OwnedSemaphorePermit>,
    /// The worker's slots (a job waiting for its lock gives its slot back meanwhile).
    pub slots: Arc<Semaphore>,
    /// The worker's report places ([`SlotGuard::free_slot_for_report`]).
    pub reports: Arc<Semaphore>,
    /// Tripped when the runner stops taking jobs.
    pub stopping: CancellationToken,
    /// Tripped when the drain grace is over.
    pub kill: CancellationToken,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner, P: Policy> MessageTask<Q, T, R, P> {
    /// Admits the message and runs its job or answers its refusal; see the module
    /// documentation.
    pub async fn run(mut self) {
        let Some(permit) = self.permit.take() else {
            return tracing::error!(
                message_id = self.message.id,
                "a message task came without its slot; the message reappears"
            );
        };
        let parts = &self.parts;
        let message = &self.message;
        if self.stopping.is_cancelled() {
            return parts.give_back(message, "the runner is stopping").await;
        }
        let receipt = parts.registry.start(&message.id, &message.receipt);
        let job_cancel = self.kill.child_token();
        let lease = Lease::start(
            parts.clone(),
            receipt.clone(),
            message.received,
            job_cancel.clone(),
        );
        let span = super::job_span::job_span(message);
        parts.stats.admitting.fetch_add(1, Ordering::SeqCst);
        let admit = self
            .policy
            .admit(message)
            .instrument(tracing::debug_span!(parent: &span, "receive"));
        let admission = tokio::select! {
            biased;
            admission = admit => Some(admission),
            _ = self.stopping.cancelled() => None,
        };
        parts.stats.admitting.fetch_sub(1, Ordering::SeqCst);
        let Some(admission) = admission else {
            lease.end().await;
            parts.registry.finish(&message.id, false);
            return parts.give_back(message, "the runner is stopping").await;
        };
        record_outcome(&span, &admission);
        let (admission, permit, held) = match self.lock_for(admission, permit, &job_cancel).await {
            Locked::Go(admission, permit, held) => (admission, permit, held),
            Locked::Stopped => {
                lease.end().await;
                parts.registry.finish(&message.id, false);
                return parts.give_back(message, "the runner is stopping").await;
            }
        };
        match admission {
            Admission::Run(admitted) => {
                if parts.lease.is_none()
                    && let Err(e) = parts.delete(&message.receipt).await
                {
                    tracing::error!(message_id = message.id, error = %e, "could not delete the message; not running it now (it will reappear)");
                    lease.end().await;
                    return parts.registry.finish(&message.id, false);
                }
                let guard = SlotGuard::new(
                    &message.id,
                    parts.registry.clone(),
                    parts.stats.clone(),
                    parts.last_end.clone(),
                    permit,
                    self.reports.clone(),
                );
                let expected = parts.durations.expected(&admitted.job);
                let job =
                    RunningJob::admitted(message, &admitted, &span, job_cancel.clone(), expected);
                parts.stats.board.add(job.clone());
                let task = JobTask {
                    parts: parts.clone(),
                    admitted: *admitted,
                    message: self.message.clone(),
                    receipt,
                    job,
                    lease,
                    job_cancel,
                    lock: held,
                };
                return task.run(guard).instrument(span).await;
            }
            Admission::Leave(reason) => {
                tracing::info!(message_id = message.id, reason, "message left in the queue")
            }
            Admission::Delete(reason) => {
                tracing::error!(
                    message_id = message.id,
                    reason,
                    "message deleted without an answer"
                );
                let _ = parts.delete(&message.receipt).await;
            }
            Admission::Fail { token, report } => self.refuse(&token, &report).await,
            Admission::FailAndShutdown {
                token,
                report,
                reason,
            } => {
                self.refuse(&token, &report).await;
                parts.stop.request(reason);
            }
            Admission::Shutdown(reason) => parts.stop.request(reason),
        }
        lease.end().await;
        parts.registry.finish(&message.id, false);
    }

    /// Answers a refused job with its failure and deletes its message once the answer was
    /// accepted (or the token is known closed). A stop interrupts it: the message goes back.
    async fn refuse(&self, token: &str, report: &Report) {
        let (parts, message) = (&self.parts, &self.message);
        if let Report::Failure { error, cause } = report {
            tracing::error!(message_id = message.id, error, cause, "job refused");
        }
        let delivery = tokio::select! {
            delivery = answer::deliver(&*parts.tokens, token, report, &parts.stats.figures, parts.report_retries) => delivery,
            _ = self.stopping.cancelled() => {
                return parts.give_back(message, "the runner is stopping; the refusal is answered when the message comes back").await;
            }
        };
        parts.stop.count(&parts.breaker, report);
        if !delivery.is_answered() {
            tracing::error!(
                message_id = message.id,
                "the refusal was not delivered: the message stays and is refused again when it comes back"
            );
            return;
        }
        if let Err(e) = parts.delete(&message.receipt).await {
            tracing::error!(message_id = message.id, error = %e, "could not delete the refused message");
        }
    }
}

/// What waiting for a job's lock left.
enum Locked {
    /// Go on with this admission and slot (and the lock, if the job has one).
    Go(Admission, OwnedSemaphorePermit, Option<Held>),
    /// The runner stopped while the job waited.
    Stopped,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner, P: Policy> MessageTask<Q, T, R, P> {
    /// For an admitted job with a `lock`: gives its slot back, waits for the lock (its message
    /// stays leased), then takes a slot again. A job with a lock on a runner without a lock
    /// table, or a lock table that fails, is refused.
    async fn lock_for(
        &self,
        admission: Admission,
        permit: OwnedSemaphorePermit,
        job_cancel: &CancellationToken,
    ) -> Locked {
        let Admission::Run(admitted) = &admission else {
            return Locked::Go(admission, permit, None);
        };
        let Some(name) = admitted.job.lock.clone() else {
            return Locked::Go(admission, permit, None);
        };
        let Some((store, lease)) = self.parts.locks.clone() else {
            let cause = format!(
                "the job names lock {name:?}, and this runner has no lock table: set ATTINI_LOCK_TABLE (the service stack does), or remove `lock`"
            );
            let report = Report::failure(crate::engine::names::INVALID_JOB, cause);
            let refusal = Admission::Fail {
                token: admitted.token.clone(),
                report: crate::engine::names::for_format(report, admitted.job.format),
            };
            return Locked::Go(refusal, permit, None);
        };
        let owner = format!("{}#{}", self.message.id, uuid::Uuid::new_v4().simple());
        // Waiting holds no slot.
        drop(permit);
        let waited = locks::wait_for(
            store,
            &name,
            &owner,
            lease,
            &self.stopping,
            job_cancel.clone(),
        )
        .await;
        let held = match waited {
            Ok(Some(held)) => held,
            Ok(None) => return Locked::Stopped,
            Err(e) => {
                tracing::error!(lock = name, error = %e, "the lock table could not be used; the message is left and comes back (the runner needs dynamodb:UpdateItem, PutItem, Query and DeleteItem on ATTINI_LOCK_TABLE)");
                let permit = self.slots.clone().acquire_owned().await;
                return match permit {
                    Ok(permit) => Locked::Go(
                        Admission::Leave("the lock table could not be used".into()),
                        permit,
                        None,
                    ),
                    Err(_) => Locked::Stopped,
                };
            }
        };
        let permit = tokio::select! {
            permit = self.slots.clone().acquire_owned() => permit,
            _ = self.stopping.cancelled() => {
                held.release().await;
                return Locked::Stopped;
            }
        };
        match permit {
            Ok(permit) => Locked::Go(admission, permit, Some(held)),
            Err(_) => {
                held.release().await;
                Locked::Stopped
            }
        }
    }
}

fn record_outcome(span: &tracing::Span, admission: &Admission) {
    let outcome = match admission {
        Admission::Run(_) => return,
        Admission::Leave(_) => "left",
        Admission::Delete(_) => "deleted",
        Admission::Fail { .. } | Admission::FailAndShutdown { .. } => "refused",
        Admission::Shutdown(_) => "shutdown",
    };
    span.record("outcome", outcome);
}

#[cfg(test)]
#[path = "message_task_tests.rs"]
mod tests;
