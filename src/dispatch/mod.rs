//! The dispatch loop's vocabulary: what a policy decides about a message ([`Admission`]), the
//! job it admits ([`Admitted`]), why the loop ended ([`Exit`]), its limits and counters. The
//! loop itself is in [`run`]. Plain data; nothing to cancel.

mod run;

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::distribution::Source;
use crate::job::JobSpec;
use crate::joblog::LogObject;
use crate::queue::Message;
use crate::report::Report;

pub use run::Dispatcher;

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

/// Settings of the dispatch loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Jobs at once (`ATTINI_MAX_CONCURRENT_JOBS`, default 5).
    pub max_jobs: usize,
    /// Exit after this long without jobs (`ATTINI_RUNNER_IDLE_TTL`); `None` never.
    pub idle_ttl: Option<Duration>,
    /// Time running jobs get to finish after a stop (`ATTINI_DRAIN_GRACE`, default 90 s, below
    /// Fargate's 120 s stop timeout).
    pub drain_grace: Duration,
}

impl Limits {
    /// `ATTINI_DRAIN_GRACE` through `lookup`, in seconds (0 to 3600, default 90).
    pub fn drain_grace(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Duration, crate::config::ConfigError> {
        crate::config::number(lookup, "ATTINI_DRAIN_GRACE", 90, 0, 3600).map(Duration::from_secs)
    }
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
    /// Reports sent for finished jobs (accepted or not).
    pub reported: AtomicUsize,
    /// Jobs ended because Step Functions said their task was gone.
    pub cancelled: AtomicUsize,
}
