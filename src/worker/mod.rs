//! The warm loop, with no AWS in it: take a free slot, receive messages, let the mode's
//! [`Policy`] decide about each, run admitted jobs on the engine with a lease and heartbeat,
//! answer their tokens, then acknowledge their messages; drain on shutdown.
//!
//! It speaks to the outside only through three small traits it owns: [`Queue`] (receive,
//! extend, release, delete), [`TaskTokens`] (success, failure, heartbeat) and [`JobRunner`]
//! (the engine). `crate::aws` implements the first two with the SDK; [`memory`] has an
//! in-memory pair with which the ordering of lease, heartbeat, report and delete is tested
//! under tokio's paused clock.
//!
//! Files: [`poll`](self::poll) is the loop (slots, receive, dispatch, idle TTL, drain),
//! [`message_task`](self::message_task) one message (its lease, its admission, its job or
//! refusal), [`job_task`](self::job_task) one admitted job, [`running`](self::running) the registry of
//! running and finished messages with the guard that frees a slot on every exit path,
//! [`answer`] the report delivery, [`joblog`] where output lines go, [`admit`] the decision
//! vocabulary. Cancellation: trip the shutdown token given to [`Worker::run`].

pub mod admit;
pub mod answer;
pub mod board;
mod breaker;
mod drain_plan;
mod durations;
pub mod health;
mod in_flight;
mod job_span;
mod job_task;
pub mod joblog;
mod lease;
pub mod locks;
pub mod memory;
mod message_task;
mod poll;
pub mod protection;

mod running;
mod shared;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::engine::executor::LogSink;
use crate::engine::{Engine, JobResult, RunOptions};
use crate::job::JobSpec;

pub use crate::calls::{CallError, ErrorClass};
pub use admit::{Admission, Admitted, Policy};

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The queue's message id, for logs.
    pub id: String,
    /// The body (a job).
    pub body: String,
    /// The receipt handle of this delivery.
    pub receipt: String,
    /// When this runner received it (the start of its lease).
    pub received: tokio::time::Instant,
    /// When it was sent to the queue (SQS `SentTimestamp`), if known: the queue wait.
    pub sent: Option<std::time::SystemTime>,
}

/// The job queue, as the worker needs it.
pub trait Queue: Send + Sync + 'static {
    /// The queue's name or URL, for logs and errors.
    fn name(&self) -> &str;
    /// Receives up to `max` (1 to 10) messages, waiting up to `wait` (at most 20 s) for one.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Message>, CallError>> + Send;
    /// Keeps the message invisible for `visibility` from now (extends its lease).
    fn extend(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
    /// Makes the message visible again at once.
    fn release(&self, receipt: &str) -> impl Future<Output = Result<(), CallError>> + Send;
    /// Deletes the message (one attempt; the worker retries).
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), CallError>> + Send;
    /// The visibility timeout when this runner may extend leases; `None` when it may not
    /// (messages are then deleted before their jobs run).
    fn lease(&self) -> impl Future<Output = Option<Duration>> + Send;
}

/// Step Functions task tokens, as the worker needs them.
pub trait TaskTokens: Send + Sync + 'static {
    /// `SendTaskSuccess` (one attempt).
    fn succeed(
        &self,
        token: &str,
        output: &str,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
    /// `SendTaskFailure` (one attempt).
    fn fail(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> impl Future<Output = Result<(), CallError>> + Send;
    /// `SendTaskHeartbeat` (one attempt); [`ErrorClass::TaskGone`] means the task is closed.
    fn heartbeat(&self, token: &str) -> impl Future<Output = Result<(), CallError>> + Send;
}

/// What runs a job: the engine, or a stand-in in the worker's unit tests.
pub trait JobRunner: Send + Sync + 'static {
    /// Runs `job` to its end; see [`Engine::run`].
    fn run(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        sink: Arc<dyn LogSink>,
        cancel: &CancellationToken,
    ) -> impl Future<Output = JobResult> + Send;

    /// Waits for the work a run leaves behind (removing its directory); see
    /// [`Engine::settled`]. Nothing by default.
    fn settled(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl JobRunner for Engine {
    async fn run(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        sink: Arc<dyn LogSink>,
        cancel: &CancellationToken,
    ) -> JobResult {
        Engine::run(self, job, options, sink, cancel).await
    }

    async fn settled(&self) {
        Engine::settled(self).await
    }
}

/// Settings of the warm loop; parsed by [`crate::config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Jobs at once (`ATTINI_MAX_CONCURRENT_JOBS`, default 5, 1 to 100).
    pub max_jobs: usize,
    /// Exit after this long without jobs (`ATTINI_RUNNER_IDLE_TTL`); `None` never.
    pub idle_ttl: Option<Duration>,
    /// Longest long poll (`ATTINI_RECEIVE_WAIT`, default 20 s, at most 20 s); a stop waits for
    /// the one in flight.
    pub receive_wait: Duration,
    /// Time running jobs get to finish after a stop (`ATTINI_DRAIN_GRACE`, default 90 s).
    pub drain_grace: Duration,
    /// How long a report is retried (`ATTINI_REPORT_DENIED_RETRY` for denials, default 300 s;
    /// transient errors 600 s).
    pub report_retries: answer::Retries,
    /// Runner-side failures in a row after which the runner stops as broken
    /// (`ATTINI_MAX_RUNNER_FAILURES`, default 5; 0: never).
    pub max_runner_failures: u32,
    /// Longest a message may stay in flight from its receipt ([`SQS_MAX_LEASE`], 12 h). A job
    /// still running then has its message deleted shortly before, and from then on only the
    /// Step Functions heartbeat notices a crash (a `HeartbeatSeconds` on the state fails the
    /// task, and a `Retry` runs it again).
    pub max_lease: Duration,
}

/// SQS's cap on a message's total visibility from its receipt: 12 hours.
pub const SQS_MAX_LEASE: Duration = Duration::from_secs(12 * 3600);

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The shutdown token was cancelled.
    Requested,
    /// No job ran for the idle TTL.
    Idle,
    /// The policy or a fatal queue error stopped the runner; the reason.
    Stopped(String),
    /// Jobs in a row failed on the runner's side ([`breaker`]): the runner is broken; why.
    Broken(String),
}

/// What the ops server reads while the worker runs. The counts (jobs running, slots, jobs
/// and reports by outcome) are in [`Stats::figures`], kept once.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages being admitted now (their slots are taken, their jobs not yet running).
    pub admitting: AtomicUsize,
    /// Whether the loop is alive and ready.
    pub health: health::Health,
    /// The running jobs.
    pub board: board::Board,
    /// The runner's figures (metrics), shared with the engine, the AWS clients and the
    /// observers; a fresh set by default.
    pub figures: Arc<crate::metrics::Figures>,
}

/// The warm loop over one queue.
pub struct Worker<Q, T, R> {
    parts: Arc<shared::Parts<Q, T, R>>,
    config: WorkerConfig,
}

impl<Q: Queue, T: TaskTokens, R: JobRunner> Worker<Q, T, R> {
    /// A worker for `queue`. Finds out whether the role may extend message visibility (lease
    /// mode) and says once if it may not.
    pub async fn new(
        runner: Arc<R>,
        queue: Arc<Q>,
        tokens: Arc<T>,
        config: WorkerConfig,
        stats: Arc<Stats>,
    ) -> Self {
        let lease = queue.lease().await;
        match lease {
            Some(visibility) => {
                let beat = lease::beat_interval(Some(visibility), None);
                tracing::info!(
                    visibility_s = visibility.as_secs(),
                    beat_ms = beat.as_millis() as u64,
                    call_bound_ms = lease::call_bound(beat).as_millis() as u64,
                    "lease mode: messages stay in flight while their jobs run; each extension and \
                     heartbeat is cut at the call bound, whatever the AWS timeouts say, and tried again \
                     within the window"
                );
                if visibility < Duration::from_secs(3) {
                    tracing::warn!(
                        visibility_s = visibility.as_secs(),
                        "the queue's visibility timeout is under 3 s: beats come every second, too \
                         seldom to keep a message leased; a job may run twice. Set it to 30 s or more"
                    );
                }
            }
            None => tracing::warn!(
                "the runner's role may not call sqs:ChangeMessageVisibility: messages are deleted before their jobs run, \
                 so a job is lost if this runner dies. Add sqs:ChangeMessageVisibility on the queue to keep them safe."
            ),
        }
        let parts = shared::Parts::new(runner, queue, tokens, lease, stats, &config);
        Worker {
            parts: Arc::new(parts),
            config,
        }
    }

    /// Lets jobs name a `lock`, kept in `store` with entries leased for `lease`.
    pub fn with_locks(mut self, store: Arc<dyn locks::LockStore>, lease: Duration) -> Self {
        match Arc::get_mut(&mut self.parts) {
            Some(parts) => parts.locks = Some((store, lease)),
            // The parts are shared only once the loop runs.
            None => tracing::error!("locks set on a running worker; jobs with a lock are refused"),
        }
        self
    }

    /// Runs the loop until `shutdown`, the idle TTL or a fatal error, then drains and waits
    /// for the finished jobs' directories to be removed.
    pub async fn run<P: Policy>(&self, policy: Arc<P>, shutdown: CancellationToken) -> Exit {
        let exit = poll::Poll::new(self.parts.clone(), self.config)
            .run(policy, shutdown)
            .await;
        self.parts.runner.settled().await;
        exit
    }
}
