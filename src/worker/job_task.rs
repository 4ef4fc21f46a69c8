//! One admitted job from start to acknowledgement: its log, its lease and heartbeat, the
//! engine run, the report, and what happens to its message.
//!
//! Lease mode (the role may change message visibility): the message stays in flight while
//! the job runs, a beat every third of the visibility timeout extends it, and it is deleted
//! only after Step Functions accepted the report (or the task was already closed). Without
//! that permission the message was deleted before the job started (the Attini Runner's order).
//! On the same beat `SendTaskHeartbeat` is sent: when Step Functions answers that the task is
//! gone (execution stopped or timed out) the job's processes are ended, nothing is reported
//! and the message is deleted. A job whose run panics is reported as a `RuntimeError` naming
//! the panic. Cancellation: the `kill` token (drain deadline) ends the job's processes and it
//! is reported as `Runner.Interrupted`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use super::answer::{self, Delivery};
use super::joblog::JobLog;
use super::parts::Parts;
use super::running::{Receipt, SlotGuard};
use super::{Admitted, ErrorClass, JobRunner, Message, Queue, TaskTokens};
use crate::engine::executor::Termination;
use crate::engine::outcome::{INTERRUPTED_ERROR, RUNTIME_ERROR, Report};
use crate::engine::{JobResult, RunOptions};

/// Beat interval when neither a lease nor the job asks for a shorter one.
const DEFAULT_BEAT: Duration = Duration::from_secs(30);

/// One admitted job and what it needs.
pub struct JobTask<Q, T, R> {
    /// The worker's parts.
    pub parts: Arc<Parts<Q, T, R>>,
    /// The job.
    pub admitted: Admitted,
    /// Its message.
    pub message: Message,
    /// The newest receipt handle of its message.
    pub receipt: Receipt,
    /// Tripped when the drain grace is over.
    pub kill: CancellationToken,
}

/// How the job's run ended, as far as answering goes.
enum Ending {
    /// Step Functions closed the task: nothing to report.
    TaskGone,
    /// Report this.
    Report(Report),
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> JobTask<Q, T, R> {
    /// Runs the job; see the module documentation. `guard` frees the slot when this ends,
    /// however it ends.
    pub async fn run(self, mut guard: SlotGuard) {
        let ending = self.execute().await;
        let answered = match ending {
            Ending::TaskGone => {
                tracing::warn!(
                    "Step Functions cancelled the job (execution stopped or timed out); its processes were ended and nothing is reported"
                );
                self.parts.stats.cancelled.fetch_add(1, Ordering::SeqCst);
                true
            }
            Ending::Report(report) => self.report(&report).await.is_answered(),
        };
        if answered {
            guard.set_answered();
        }
        if self.parts.lease.is_some() {
            if answered {
                self.delete().await;
            } else {
                tracing::error!(
                    message_id = self.message.id,
                    "the report was not delivered: the message stays in the queue and the job will run again"
                );
            }
        }
    }

    /// Runs the job with its log and heartbeat; says how it ended.
    async fn execute(&self) -> Ending {
        let admitted = &self.admitted;
        let tag = admitted
            .job
            .step_name
            .clone()
            .unwrap_or_else(|| "job".into());
        let log = JobLog::start(tag, admitted.log_store.clone());
        let job_cancel = self.kill.child_token();
        let stop_beats = CancellationToken::new();
        let interval = beat_interval(self.parts.lease, admitted.job.heartbeat);
        let beats = tokio::spawn(heartbeat(
            self.parts.clone(),
            self.receipt.clone(),
            admitted.token.clone(),
            interval,
            stop_beats.clone(),
            job_cancel.clone(),
        ));
        tracing::info!(lease = self.parts.lease.is_some(), "job started");
        let result = self.run_engine(log.sink(), &job_cancel).await;
        stop_beats.cancel();
        let task_gone = beats.await.unwrap_or(false);
        log.finish().await;
        match result {
            _ if task_gone => Ending::TaskGone,
            Ok(result) if interrupted(&result) => {
                Ending::Report(interrupted_report(self.parts.drain_grace, &result))
            }
            Ok(result) => {
                tracing::info!(job_id = result.job_id, "job ended");
                Ending::Report(result.report)
            }
            Err(report) => Ending::Report(report),
        }
    }

    /// The engine run on its own task, so that a panic in it becomes a failure report.
    async fn run_engine(
        &self,
        sink: Arc<JobLog>,
        cancel: &CancellationToken,
    ) -> Result<JobResult, Report> {
        let runner = self.parts.runner.clone();
        let job = self.admitted.job.clone();
        let options = RunOptions {
            source: self.admitted.source.clone(),
            logs_at: self.admitted.logs_at.clone(),
            cwd: None,
        };
        let cancel = cancel.clone();
        let run = tokio::spawn(async move { runner.run(&job, &options, sink, &cancel).await });
        run.await.map_err(|e| {
            let what = match e.try_into_panic() {
                Ok(panic) => panic_text(&*panic),
                Err(e) => e.to_string(),
            };
            tracing::error!(error = what, "the job's run panicked");
            Report::failure(
                RUNTIME_ERROR,
                format!("The runner hit an internal error while running the job ({what}); the job may not have finished. This is a bug in attini-runner: please report it."),
            )
        })
    }

    /// Delivers the report and logs the outcome.
    async fn report(&self, report: &Report) -> Delivery {
        let delivery = answer::deliver(&*self.parts.tokens, &self.admitted.token, report).await;
        self.parts.stats.reported.fetch_add(1, Ordering::SeqCst);
        let outcome = match report {
            Report::Success { .. } => "succeeded".to_string(),
            Report::Failure { error, .. } => format!("failed: {error}"),
        };
        let delivered = matches!(delivery, Delivery::Accepted);
        tracing::info!(outcome, delivered, "job finished");
        delivery
    }

    /// Deletes the finished job's message with its newest receipt handle; if a redelivery
    /// replaced the handle meanwhile, tries again with the new one.
    async fn delete(&self) {
        let mut tried = String::new();
        for _ in 0..3 {
            let current = self
                .receipt
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if current == tried {
                break;
            }
            match self.parts.delete(&current).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(message_id = self.message.id, error = %e, "could not delete the message of a finished job; if it comes back it is deleted then, not run")
                }
            }
            tried = current;
        }
    }
}

fn interrupted(result: &JobResult) -> bool {
    matches!(
        result.execution.as_ref().map(|e| &e.termination),
        Some(Termination::Cancelled)
    )
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

fn interrupted_report(grace: Duration, result: &JobResult) -> Report {
    let tail = result
        .execution
        .as_ref()
        .map(|e| e.output.tail.join("\n"))
        .unwrap_or_default();
    Report::failure(
        INTERRUPTED_ERROR,
        format!(
            "The runner was stopping and the job did not finish within the {} s drain grace period, so its processes were ended. \
             Retry on Runner.Interrupted to run it on another runner.\nLast lines of output:\n{tail}",
            grace.as_secs()
        ),
    )
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

/// Extends the lease and sends heartbeats until `stop`; returns true (and cancels the job)
/// when Step Functions says the task is gone.
async fn heartbeat<Q: Queue, T: TaskTokens, R: JobRunner>(
    parts: Arc<Parts<Q, T, R>>,
    receipt: Receipt,
    token: String,
    interval: Duration,
    stop: CancellationToken,
    job_cancel: CancellationToken,
) -> bool {
    loop {
        tokio::select! {
            _ = sleep(interval) => {}
            _ = stop.cancelled() => return false,
        }
        if let Some(visibility) = parts.lease {
            let current = receipt.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Err(e) = parts.queue.extend(&current, visibility).await {
                tracing::warn!(error = %e, "could not extend the message's lease; it may be delivered again");
            }
        }
        if !parts.heartbeats.load(Ordering::Relaxed) {
            continue;
        }
        let Err(e) = parts.tokens.heartbeat(&token).await else {
            continue;
        };
        match e.class {
            ErrorClass::TaskGone => {
                job_cancel.cancel();
                return true;
            }
            ErrorClass::Denied => {
                if parts.heartbeats.swap(false, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "no states:SendTaskHeartbeat permission: a stopped execution is noticed only when the job reports");
                }
            }
            _ => tracing::warn!(error = %e, "heartbeat failed; trying again on the next beat"),
        }
    }
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
}
