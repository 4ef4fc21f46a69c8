//! One received message, on a task of its own from the moment the loop dispatches it: its
//! lease starts at once, the [`Policy`] admits it (parse, ownership, secrets, role,
//! distribution: calls that may take minutes), then the job runs ([`JobTask`]) or the refusal
//! is answered, in parallel with every other message. The task holds its slot throughout; the
//! slot counts as a running job only once the job is admitted.
//!
//! Cancellation: `stopping` (a stop signal, the idle TTL, the policy's or a fatal error's
//! shutdown) interrupts an admission or a refusal in progress, and the message goes back to
//! the queue at once, so the drain begins at once; a message whose admission had not begun
//! when the stop came goes back too. `kill` (the drain grace is over) ends a running job.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::board::RunningJob;
use super::job_task::JobTask;
use super::lease::Lease;
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
    /// Its slot.
    pub permit: OwnedSemaphorePermit,
    /// Tripped when the runner stops taking jobs.
    pub stopping: CancellationToken,
    /// Tripped when the drain grace is over.
    pub kill: CancellationToken,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner, P: Policy> MessageTask<Q, T, R, P> {
    /// Admits the message and runs its job or answers its refusal; see the module
    /// documentation.
    pub async fn run(self) {
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
                    self.permit,
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
