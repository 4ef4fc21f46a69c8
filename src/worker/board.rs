//! The running jobs as an operator sees them (`GET /jobs`): message, job id, execution,
//! kind, step, start, the phase it is in and the command running now. Only names and times are kept here, never
//! a job's variables, input or commands, so nothing secret can be shown. Entries are added
//! when a job task starts and removed by its slot guard; nothing to cancel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::drain_plan::Decision;
use super::durations::Basis;
use super::{Admitted, Message};
use crate::engine::executor::progress::{Phase, Progress};

/// One running job.
#[derive(Debug)]
pub struct RunningJob {
    /// The queue's message id.
    pub message_id: String,
    /// The job's id (its folder, its log lines, its trace).
    pub job_id: String,
    /// The Step Functions execution ARN, when the job names it (Attini jobs).
    pub execution: Option<String>,
    /// The job's kind (`commands`, `cdk`).
    pub kind: &'static str,
    /// The step name, when known.
    pub step: Option<String>,
    /// When its task started.
    pub started: SystemTime,
    /// How many commands it has.
    pub commands: usize,
    /// Which of them runs.
    pub progress: Arc<Progress>,
    /// Ends its processes.
    pub cancel: CancellationToken,
    /// When its task started (the drain's clock).
    pub began: tokio::time::Instant,
    /// How long it is expected to run in all, and why.
    pub expected: Option<(Duration, Basis)>,
    /// False: it must not be cut short.
    pub interruptible: bool,
    /// What the drain decided for it, once a stop came.
    pub drained: Mutex<Option<Decision>>,
}

impl RunningJob {
    /// The admitted job of `message` as the board shows it, with a new job id, ended by
    /// `cancel`, expected to run `expected`; its details are recorded on its trace's root
    /// `span`.
    pub fn admitted(
        message: &Message,
        admitted: &Admitted,
        span: &tracing::Span,
        cancel: CancellationToken,
        expected: Option<(Duration, Basis)>,
    ) -> Arc<Self> {
        let job = &admitted.job;
        let job_id = uuid::Uuid::new_v4().to_string();
        let attini = job.attini.as_ref();
        span.record("job_id", job_id.as_str());
        span.record("task", crate::job::task_id(&admitted.token).as_str());
        span.record("kind", job.kind.label());
        if let Some(step) = &job.step_name {
            span.record("step", step.as_str());
        }
        if let Some(a) = attini {
            span.record("execution", a.execution_name());
            span.record("execution_arn", a.execution_arn.as_str());
        }
        Arc::new(RunningJob {
            message_id: message.id.clone(),
            job_id,
            execution: attini.map(|a| a.execution_arn.clone()),
            kind: job.kind.label(),
            step: job.step_name.clone(),
            started: SystemTime::now(),
            commands: job.commands.len(),
            progress: {
                let progress = Progress::default();
                progress.enter_at(Phase::Admission, message.received);
                Arc::new(progress)
            },
            cancel,
            began: tokio::time::Instant::now(),
            expected,
            interruptible: job.interruptible,
            drained: Mutex::new(None),
        })
    }

    /// What the drain decided for it, if a stop came.
    pub fn drained(&self) -> Option<Decision> {
        *lock(&self.drained)
    }
}

/// The running jobs by message id.
#[derive(Debug, Default)]
pub struct Board(Mutex<BTreeMap<String, Arc<RunningJob>>>);

impl Board {
    /// Adds a running job.
    pub fn add(&self, job: Arc<RunningJob>) {
        lock(&self.0).insert(job.message_id.clone(), job);
    }

    /// Removes the job of message `id`.
    pub fn remove(&self, id: &str) {
        lock(&self.0).remove(id);
    }

    /// The running jobs, in message id order.
    pub fn jobs(&self) -> Vec<Arc<RunningJob>> {
        lock(&self.0).values().cloned().collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
