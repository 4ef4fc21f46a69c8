//! The dispatch loop: take a free slot first, then receive only as many messages as there are
//! free slots (at most 10, long poll up to 20 s); each admitted job runs as a tracked task with
//! its own span, holding its slot until it has reported.
//!
//! What to do with each message is the [`Policy`]'s decision (Attini filters, native
//! parsing). The loop never dies of a transient AWS error: it backs off and polls again. It
//! ends when the shutdown token is cancelled, when the policy or a fatal queue error asks for
//! a shutdown, or after `idle_ttl` without jobs (counted from the end of the last job); it then
//! waits for running jobs to finish. Cancellation: trip `shutdown`; running jobs are waited
//! for (the drain with a deadline comes with lease mode).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::distribution::Source;
use crate::engine::{Engine, RunOptions};
use crate::job::JobSpec;
use crate::joblog::{JobLog, LogObject};
use crate::queue::{Message, Queue};
use crate::report::Report;
use crate::reporter::{self, Delivery};
use crate::retry::Class;

/// Longest SQS long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// A job ready to run.
pub struct Admitted {
    /// The job; its token is present.
    pub job: JobSpec,
    /// Its token.
    pub token: String,
    /// Its distribution, if any.
    pub source: Option<Source>,
    /// Where its log object goes, if anywhere.
    pub log_object: Option<LogObject>,
    /// Where the complete log can be read, for failure causes.
    pub logs_at: Option<String>,
}

/// What to do with a received message.
pub enum Admission {
    /// Run it.
    Run(Box<Admitted>),
    /// Leave it in the queue: it reappears after its visibility timeout (another runner's job).
    Leave(String),
    /// Delete it without answering (no token to answer); the reason is logged as an error.
    Delete(String),
    /// Answer its token with this failure and delete it.
    Fail {
        /// The token to answer.
        token: String,
        /// The failure.
        report: Report,
    },
    /// Stop this runner; the message stays in the queue.
    Shutdown(String),
    /// Answer the token with this failure, delete the message and stop this runner.
    FailAndShutdown {
        /// The token to answer.
        token: String,
        /// The failure.
        report: Report,
        /// Why the runner stops.
        reason: String,
    },
}

/// Decides about messages. Implemented by the Attini and the native mode.
pub trait Policy: Send + Sync + 'static {
    /// The decision for one message.
    fn admit(&self, message: &Message) -> impl Future<Output = Admission> + Send;
}

/// Why the loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The shutdown token was cancelled.
    Requested,
    /// No job ran for the idle TTL.
    Idle,
    /// The policy or a fatal queue error stopped the runner; the reason.
    Stopped(String),
}

/// The dispatch loop's settings and shared parts.
pub struct Dispatcher {
    /// The job engine.
    pub engine: Arc<Engine>,
    /// The queue.
    pub queue: Queue,
    /// Step Functions client for reports.
    pub sfn: aws_sdk_sfn::Client,
    /// Jobs at once (`ATTINI_MAX_CONCURRENT_JOBS`, default 5).
    pub max_jobs: usize,
    /// Exit after this long without jobs (`ATTINI_RUNNER_IDLE_TTL`); `None` never.
    pub idle_ttl: Option<Duration>,
}

/// Counters shared with the job tasks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Jobs running now.
    pub running: AtomicUsize,
    /// Most jobs that ever ran at once.
    pub peak: AtomicUsize,
    /// Jobs finished (reported or not).
    pub finished: AtomicUsize,
}

impl Dispatcher {
    /// Runs the loop until it ends; see the module documentation.
    pub async fn run<P: Policy>(
        &self,
        policy: Arc<P>,
        shutdown: CancellationToken,
        stats: Arc<Stats>,
    ) -> Exit {
        let slots = Arc::new(Semaphore::new(self.max_jobs.max(1)));
        let tracker = TaskTracker::new();
        let last_end = Arc::new(std::sync::Mutex::new(Instant::now()));
        let mut failures = 0u32;
        let exit = loop {
            let idle_left = self.idle_ttl.map(|ttl| {
                let since = last_end.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
                ttl.saturating_sub(since)
            });
            if idle_left == Some(Duration::ZERO) && stats.running.load(Ordering::SeqCst) == 0 {
                break Exit::Idle;
            }
            let first = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break Exit::Requested,
                },
                _ = shutdown.cancelled() => break Exit::Requested,
            };
            let mut permits = vec![first];
            while permits.len() < 10 {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            // As the Attini Runner: never wait longer than the idle TTL, so that an idle runner
            // notices its TTL soon after its last job ended.
            let wait = match (self.idle_ttl, idle_left) {
                (Some(ttl), Some(left)) if stats.running.load(Ordering::SeqCst) == 0 => {
                    left.min(ttl).min(MAX_WAIT)
                }
                (Some(ttl), _) => ttl.min(MAX_WAIT),
                (None, _) => MAX_WAIT,
            };
            let received = tokio::select! {
                r = self.queue.receive(permits.len(), wait) => r,
                _ = shutdown.cancelled() => break Exit::Requested,
            };
            let messages = match received {
                Ok(messages) => {
                    failures = 0;
                    messages
                }
                Err(e) if matches!(e.class, Class::Missing | Class::Denied) => {
                    break Exit::Stopped(format!(
                        "the queue {} cannot be used: {e}",
                        self.queue.url()
                    ));
                }
                Err(e) => {
                    failures = (failures + 1).min(8);
                    let delay = Duration::from_millis(250 << failures).min(Duration::from_secs(30));
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "receiving from the queue failed; retrying");
                    tokio::select! { _ = sleep(delay) => {}, _ = shutdown.cancelled() => break Exit::Requested }
                    continue;
                }
            };
            let mut stop = None;
            for message in messages {
                if stop.is_some() {
                    tracing::info!(
                        message_id = message.id,
                        "left in the queue: the runner is stopping"
                    );
                    continue;
                }
                match policy.admit(&message).await {
                    Admission::Run(admitted) => {
                        let Some(permit) = permits.pop() else {
                            tracing::error!(
                                message_id = message.id,
                                "received more messages than free slots; left in the queue"
                            );
                            continue;
                        };
                        // Issue order of the Attini Runner: the message is deleted before the job
                        // runs, so a 15 s visibility timeout cannot deliver it twice.
                        if let Err(e) = self.queue.delete(&message).await {
                            tracing::error!(message_id = message.id, error = %e, "could not delete the message; not running it now (it will reappear)");
                            continue;
                        }
                        let task = JobTask {
                            engine: self.engine.clone(),
                            sfn: self.sfn.clone(),
                            stats: stats.clone(),
                            last_end: last_end.clone(),
                        };
                        stats.running.fetch_add(1, Ordering::SeqCst);
                        stats
                            .peak
                            .fetch_max(stats.running.load(Ordering::SeqCst), Ordering::SeqCst);
                        let span = job_span(&message, &admitted);
                        tracker.spawn(
                            async move {
                                task.run(*admitted).await;
                                drop(permit);
                            }
                            .instrument(span),
                        );
                    }
                    Admission::Leave(reason) => {
                        tracing::info!(
                            message_id = message.id,
                            reason,
                            "message left in the queue"
                        );
                    }
                    Admission::Delete(reason) => {
                        tracing::error!(
                            message_id = message.id,
                            reason,
                            "message deleted without an answer"
                        );
                        let _ = self.queue.delete(&message).await;
                    }
                    Admission::Fail { token, report } => {
                        self.refuse(&message, &token, &report).await
                    }
                    Admission::FailAndShutdown {
                        token,
                        report,
                        reason,
                    } => {
                        self.refuse(&message, &token, &report).await;
                        stop = Some(reason);
                    }
                    Admission::Shutdown(reason) => stop = Some(reason),
                }
            }
            drop(permits);
            if let Some(reason) = stop {
                break Exit::Stopped(reason);
            }
        };
        tracker.close();
        if !tracker.is_empty() {
            tracing::info!(
                running = stats.running.load(Ordering::SeqCst),
                "waiting for running jobs to finish"
            );
        }
        tracker.wait().await;
        exit
    }
}

impl Dispatcher {
    /// Answers a refused job with its failure and deletes its message.
    async fn refuse(&self, message: &Message, token: &str, report: &Report) {
        if let Report::Failure { error, cause } = report {
            tracing::error!(message_id = message.id, error, cause, "job refused");
        }
        reporter::send(&self.sfn, token, report).await;
        if let Err(e) = self.queue.delete(message).await {
            tracing::error!(message_id = message.id, error = %e, "could not delete the refused message");
        }
    }
}

fn job_span(message: &Message, admitted: &Admitted) -> tracing::Span {
    let execution = admitted
        .job
        .attini
        .as_ref()
        .map(|a| a.execution_name().to_string())
        .unwrap_or_default();
    tracing::info_span!("job", message_id = %message.id, step = admitted.job.step_name.as_deref().unwrap_or(""), execution)
}

/// What a job task needs.
struct JobTask {
    engine: Arc<Engine>,
    sfn: aws_sdk_sfn::Client,
    stats: Arc<Stats>,
    last_end: Arc<std::sync::Mutex<Instant>>,
}

impl JobTask {
    async fn run(self, admitted: Admitted) {
        let tag = admitted
            .job
            .step_name
            .clone()
            .unwrap_or_else(|| "job".to_string());
        let log = JobLog::start(tag, admitted.log_object.clone());
        let options = RunOptions {
            source: admitted.source.clone(),
            logs_at: admitted.logs_at.clone(),
            cwd: None,
        };
        tracing::info!("job started");
        let result = self
            .engine
            .run(
                &admitted.job,
                &options,
                log.sink(),
                &CancellationToken::new(),
            )
            .await;
        log.finish().await;
        let outcome = match &result.report {
            Report::Success { .. } => "succeeded".to_string(),
            Report::Failure { error, .. } => format!("failed: {error}"),
        };
        let delivery = reporter::send(&self.sfn, &admitted.token, &result.report).await;
        tracing::info!(
            job_id = result.job_id,
            outcome,
            delivered = matches!(delivery, Delivery::Accepted),
            "job finished"
        );
        *self.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.stats.running.fetch_sub(1, Ordering::SeqCst);
        self.stats.finished.fetch_add(1, Ordering::SeqCst);
    }
}
