//! One admitted job from start to acknowledgement: its log, its heartbeat (on the message's
//! [`Lease`], held since the message was received), the engine run, the report, and what
//! happens to its message.
//!
//! Lease mode (the role may change message visibility): the message stays in flight from the
//! start of the job task until it is deleted, through the workspace, the commands, the final
//! log upload and the report with its retries; it is deleted only after Step Functions
//! accepted the report (or the task was already closed). Without that permission the message
//! was deleted before the job started (the Attini Runner's order). When Step Functions
//! answers a heartbeat with "task gone" (execution stopped or timed out) the job's processes
//! are ended, nothing is reported and the message is deleted. The final log upload and the
//! report run concurrently. A job whose run panics is reported as a `RuntimeError` naming
//! the panic. Cancellation: the `kill` token (drain deadline) ends the job's processes and it
//! is reported as `Runner.Interrupted`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::answer::{self, Delivery};
use super::board::RunningJob;
use super::drain_plan::Decision;
use super::joblog::{JobLog, JobLogHandle};
use super::lease::{Lease, beat_interval};
use super::locks::Held;
use super::running::{Receipt, SlotGuard};
use super::shared::Parts;
use super::{Admitted, JobRunner, Message, Queue, TaskTokens};
use crate::engine::executor::Termination;
use crate::engine::executor::progress::{Phase, Progress};
use crate::engine::outcome::{INTERRUPTED_ERROR, RUNTIME_ERROR, Report};
use crate::engine::{JobResult, RunOptions};
use crate::metrics::Outcome;
use tracing::Instrument;

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
    /// The job as the board shows it (its id, its progress).
    pub job: Arc<RunningJob>,
    /// The message's lease, held since it was received.
    pub lease: Lease,
    /// Ends the job's processes (a child of `kill`; the lease trips it when the task is gone,
    /// the lock when it is lost).
    pub job_cancel: CancellationToken,
    /// The job's lock, held until it is answered.
    pub lock: Option<Held>,
}

/// How the job's run ended, as far as answering goes.
enum Ending {
    /// Step Functions closed the task: nothing to report.
    TaskGone,
    /// Report this.
    Report(Report),
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> JobTask<Q, T, R> {
    /// Runs the job; see the module documentation. `guard` frees the slot once the job's
    /// processes are done (its answer and its message's delete hold a report place instead,
    /// [`SlotGuard::free_slot_for_report`]), or when this ends, however it ends.
    pub async fn run(mut self, guard: SlotGuard) {
        let lock = self.lock.take();
        self.run_holding(guard, lock.as_ref()).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
    }

    async fn run_holding(self, mut guard: SlotGuard, lock: Option<&Held>) {
        let interval = beat_interval(self.parts.lease, self.admitted.job.heartbeat);
        self.lease.admitted(self.admitted.token.clone(), interval);
        let started = tokio::time::Instant::now();
        let (lease, job_cancel) = (&self.lease, &self.job_cancel);
        let (ending, log) = self.execute(job_cancel, lease, lock).await;
        if self.handed_back() {
            log.finish().await;
            self.lease.end().await;
            let mut message = self.message.clone();
            message.receipt = self
                .receipt
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            tracing::info!(
                "job handed back: the runner is stopping and its commands had not started"
            );
            return self
                .parts
                .give_back(&message, "the runner is stopping")
                .await;
        }
        if let Ending::Report(Report::Success { .. }) = &ending {
            self.parts
                .durations
                .record(&self.admitted.job, started.elapsed());
        }
        lease.reporting();
        // The next job may start while this one is answered and its message deleted (the
        // task, and with it the drain, still waits for both).
        guard.free_slot_for_report().await;
        let answered = self.answer(ending, log, started).await;
        if answered {
            guard.set_answered();
        }
        drop(guard);
        if self.parts.lease.is_some() && !lease.released() {
            if answered {
                self.delete().await;
            } else {
                tracing::error!(
                    message_id = self.message.id,
                    "the report was not delivered: the message stays in the queue and the job will run again"
                );
            }
        }
        self.lease.end().await;
    }

    /// Whether the drain handed the job back and its commands never started (its message goes
    /// back unanswered: it never ran).
    fn handed_back(&self) -> bool {
        matches!(self.job.drained(), Some(Decision::HandBack))
            && !self.job.progress.reached(Phase::Commands)
            && !self.lease.released()
    }

    /// Runs the job with its log; says how it ended and hands back the log to finish.
    async fn execute(
        &self,
        job_cancel: &CancellationToken,
        lease: &Lease,
        lock: Option<&Held>,
    ) -> (Ending, JobLogHandle) {
        let admitted = &self.admitted;
        let step = admitted.job.step_name.as_deref().unwrap_or("job");
        let tag = format!("{step} #{}", crate::job::task_id(&admitted.token));
        let log = JobLog::start(tag, admitted.log_store.clone());
        tracing::info!(lease = self.parts.lease.is_some(), "job started");
        let result = self.run_engine(log.sink(), job_cancel).await;
        let ending = match result {
            _ if lease.task_gone() => Ending::TaskGone,
            Ok(result) if interrupted(&result) && lock.is_some_and(Held::is_lost) => {
                let name = lock.map(Held::name).unwrap_or_default();
                Ending::Report(Report::failure(
                    INTERRUPTED_ERROR,
                    format!(
                        "The job's lock {name:?} could not be renewed in time, so the job was ended before another holder could start (fencing). Retry on Runner.Interrupted to run it again."
                    ),
                ))
            }
            Ok(result) if interrupted(&result) => Ending::Report(interrupted_report(
                self.parts.drain_grace,
                self.job.drained(),
                &result,
            )),
            Ok(result) => {
                tracing::info!(job_id = result.job_id, "job ended");
                let format = self.admitted.job.format;
                Ending::Report(crate::engine::names::for_format(result.report, format))
            }
            Err(report) => Ending::Report(report),
        };
        (ending, log)
    }

    /// The engine run on its own task, so that a panic in it becomes a failure report.
    async fn run_engine(
        &self,
        sink: Arc<JobLog>,
        cancel: &CancellationToken,
    ) -> Result<JobResult, Report> {
        let runner = self.parts.runner.clone();
        let job = self.admitted.job.clone();
        let own = self.admitted.credentials.as_ref();
        let mut env = super::job_span::job_variables(&tracing::Span::current());
        env.extend(own.iter().flat_map(|c| c.env.iter().cloned()));
        let options = RunOptions {
            source: self.admitted.source.clone(),
            logs_at: self.admitted.logs_at.clone(),
            cwd: None,
            job_id: Some(self.job.job_id.clone()),
            progress: Some(self.job.progress.clone()),
            env,
            withheld: own.map(|c| c.withheld.clone()).unwrap_or_default(),
            secrets: own.map(|c| c.secrets.clone()).unwrap_or_default(),
        };
        let cancel = cancel.clone();
        let span = tracing::Span::current();
        let run = tokio::spawn(
            async move { runner.run(&job, &options, sink, &cancel).await }.instrument(span),
        );
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

    /// Finishes the log and, unless the task is gone, delivers the report at the same time;
    /// logs `job finished` (outcome, error, cause, delivered, duration, the time of each phase)
    /// and counts it. True
    /// when Step Functions has its answer or needs none.
    async fn answer(
        &self,
        ending: Ending,
        log: JobLogHandle,
        started: tokio::time::Instant,
    ) -> bool {
        let outcome = match &ending {
            Ending::TaskGone => Outcome::Cancelled,
            Ending::Report(Report::Success { .. }) => Outcome::Succeeded,
            Ending::Report(Report::Failure { error, .. }) if error == INTERRUPTED_ERROR => {
                Outcome::Interrupted
            }
            Ending::Report(Report::Failure { .. }) => Outcome::Failed,
        };
        tracing::Span::current().record("outcome", outcome.label());
        self.job.progress.enter(Phase::Report);
        let log_upload = tracing::debug_span!("log_upload");
        let (answered, delivered, failure) = match ending {
            Ending::TaskGone => {
                log.finish().instrument(log_upload).await;
                tracing::warn!(
                    "Step Functions cancelled the job (execution stopped or timed out); its processes were ended and nothing is reported"
                );
                (true, false, None)
            }
            Ending::Report(report) => {
                let figures = &self.parts.stats.figures;
                let delivery = answer::deliver(
                    &*self.parts.tokens,
                    &self.admitted.token,
                    &report,
                    figures,
                    self.parts.report_retries,
                )
                .instrument(tracing::debug_span!("report"));
                let (_, delivery) = tokio::join!(log.finish().instrument(log_upload), delivery);
                self.parts.stop.count(&self.parts.breaker, &report);
                let failure = match report {
                    Report::Failure { error, cause } => Some((error, cause)),
                    Report::Success { .. } => None,
                };
                let delivered = matches!(delivery, Delivery::Accepted);
                (delivery.is_answered(), delivered, failure)
            }
        };
        let took = started.elapsed();
        let (error, cause) = failure.unzip();
        let spent = self.job.progress.spent(tokio::time::Instant::now());
        let ms = |phase: Phase| Progress::total_ms(&spent, phase);
        tracing::info!(
            outcome = outcome.label(),
            error,
            cause,
            delivered,
            duration_ms = took.as_millis() as u64,
            admission_ms = ms(Phase::Admission),
            workspace_ms = ms(Phase::Workspace),
            commands_ms = ms(Phase::Commands),
            output_ms = ms(Phase::Output),
            report_ms = ms(Phase::Report),
            "job finished"
        );
        self.parts
            .stats
            .figures
            .job_finished(self.job.kind, outcome, took);
        answered
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

/// The `Runner.Interrupted` report of a job the drain ended: at once (expected to outlast
/// the grace) or when the grace was over.
fn interrupted_report(grace: Duration, decision: Option<Decision>, result: &JobResult) -> Report {
    let tail = result
        .execution
        .as_ref()
        .map(|e| e.output.tail.join("\n"))
        .unwrap_or_default();
    let why = match decision {
        Some(Decision::InterruptNow(left)) => format!(
            "The runner was stopping and the job was expected to need {} s more, past the {} s drain grace period, so its processes were ended at once.",
            left.as_secs(),
            grace.as_secs()
        ),
        _ => format!(
            "The runner was stopping and the job did not finish within the {} s drain grace period, so its processes were ended.",
            grace.as_secs()
        ),
    };
    Report::failure(
        INTERRUPTED_ERROR,
        format!(
            "{why} Retry on Runner.Interrupted to run it on another runner.\nLast lines of output:\n{tail}"
        ),
    )
}
