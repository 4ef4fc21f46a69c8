//! The runner's figures: slots, jobs by kind and outcome, job duration and queue wait, AWS
//! errors by service, operation and class, reports by result, distribution cache hits and
//! misses, draining, build info. One [`Figures`] object per runner, made by whoever starts
//! it and handed to every floor that records (no global); the ops server renders it as
//! OpenMetrics text ([`Figures::render`]) and, with `ATTINI_METRICS=emf`, [`emf`] reads that
//! same rendering each interval and writes the difference as CloudWatch Embedded Metric
//! Format lines. Each figure is kept once: the slot counts the worker needs live in
//! [`Slots`] and the registry reads them from there. Tests make their own. Recording is a few
//! atomic operations; nothing to cancel.

pub mod emf;
pub mod reading;
mod slots;

pub use slots::Slots;

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// Labels of a finished job.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `commands` or `cdk` (the native `kind`; Attini jobs are `commands`).
    pub kind: &'static str,
    /// One of [`Outcome::label`].
    pub outcome: &'static str,
}

/// Labels of a job's duration.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// As in [`JobLabels::kind`].
    pub kind: &'static str,
}

/// Labels of a failed AWS call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsErrorLabels {
    /// `sqs`, `sfn`, `s3`, `dynamodb`, `ecs`, `ec2`.
    pub service: &'static str,
    /// The API operation, e.g. `ReceiveMessage`.
    pub operation: &'static str,
    /// `transient`, `task_gone`, `denied`, `missing` or `permanent`.
    pub class: &'static str,
}

/// Labels of a result: a report's or a cache lookup's.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Reports: `accepted`, `task_gone`, `rejected`, `undelivered`; cache: `hit`, `miss`.
    pub result: &'static str,
}

/// How a job ended, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Reported as a success.
    Succeeded,
    /// Reported as a failure (its commands failed, timed out, or it was refused).
    Failed,
    /// Ended by the drain deadline (`Runner.Interrupted`).
    Interrupted,
    /// Step Functions closed its task (execution stopped or timed out); nothing reported.
    Cancelled,
}

impl Outcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Succeeded,
        Outcome::Failed,
        Outcome::Interrupted,
        Outcome::Cancelled,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportResult {
    /// Step Functions accepted it.
    Accepted,
    /// The task was already closed.
    TaskGone,
    /// Step Functions refused it for good.
    Rejected,
    /// It could not be delivered (the message stays and the job runs again).
    Undelivered,
}

impl ReportResult {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ReportResult::Accepted => "accepted",
            ReportResult::TaskGone => "task_gone",
            ReportResult::Rejected => "rejected",
            ReportResult::Undelivered => "undelivered",
        }
    }
}

/// Every figure of the runner.
pub struct Figures {
    registry: Registry,
    /// The job slots: running now (watchable), in all, at most.
    pub slots: std::sync::Arc<Slots>,
    draining: Gauge,
    broken: Gauge,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
    queue_wait_seconds: Histogram,
    aws_errors: Family<AwsErrorLabels, Counter>,
    reports: Family<ResultLabels, Counter>,
    cache: Family<ResultLabels, Counter>,
}

/// Job duration buckets, seconds: half a second to four hours.
const JOB_BUCKETS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0, 14400.0,
];
/// Queue wait buckets, seconds: 10 ms to 10 minutes.
const WAIT_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 600.0,
];

fn job_histogram() -> Histogram {
    Histogram::new(JOB_BUCKETS)
}

impl Default for Figures {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Figures").finish_non_exhaustive()
    }
}

impl Figures {
    /// A fresh set of figures, every count at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("attini_runner");
        let m = Figures {
            registry: Registry::default(),
            slots: std::sync::Arc::default(),
            draining: Gauge::default(),
            broken: Gauge::default(),
            jobs: Family::default(),
            job_seconds: Family::new_with_constructor(job_histogram as fn() -> Histogram),
            queue_wait_seconds: Histogram::new(WAIT_BUCKETS),
            aws_errors: Family::default(),
            reports: Family::default(),
            cache: Family::default(),
        };
        registry.register_collector(Box::new(m.slots.clone()));
        registry.register(
            "draining",
            "1 while the runner drains (takes no new jobs), else 0",
            m.draining.clone(),
        );
        registry.register(
            "broken",
            "1 once the runner stopped as broken (jobs in a row failed on its side), else 0",
            m.broken.clone(),
        );
        registry.register("jobs", "Jobs finished, by kind and outcome", m.jobs.clone());
        registry.register_with_unit(
            "job_duration",
            "Time from a job's start to its report, by kind",
            prometheus_client::registry::Unit::Seconds,
            m.job_seconds.clone(),
        );
        registry.register_with_unit(
            "queue_wait",
            "Time a job's message waited in the queue before this runner received it",
            prometheus_client::registry::Unit::Seconds,
            m.queue_wait_seconds.clone(),
        );
        registry.register(
            "aws_errors",
            "Failed AWS calls, by service, operation and error class (each attempt counts)",
            m.aws_errors.clone(),
        );
        registry.register(
            "reports",
            "Answers to Step Functions, by result",
            m.reports.clone(),
        );
        registry.register(
            "distribution_cache_lookups",
            "Distribution cache lookups, by result (hit or miss)",
            m.cache.clone(),
        );
        registry.register(
            "build",
            "The runner's version",
            Info::new(vec![("version", crate::VERSION)]),
        );
        Figures { registry, ..m }
    }

    /// Every figure as OpenMetrics text (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl Figures {
    /// Every figure as one [`reading::Reading`] (what the EMF writer and tests compare).
    pub fn reading(&self) -> reading::Reading {
        reading::Reading::parse(&self.render())
    }

    /// The runner started (`true`) or stopped draining.
    pub fn set_draining(&self, draining: bool) {
        self.draining.set(i64::from(draining));
    }

    /// The runner stops as broken.
    pub fn set_broken(&self) {
        self.broken.set(1);
    }

    /// A job of `kind` ended with `outcome` after `took`.
    pub fn job_finished(&self, kind: &'static str, outcome: Outcome, took: Duration) {
        let labels = JobLabels {
            kind,
            outcome: outcome.label(),
        };
        self.jobs.get_or_create(&labels).inc();
        self.job_seconds
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// A message waited `waited` in the queue.
    pub fn queue_waited(&self, waited: Duration) {
        self.queue_wait_seconds.observe(waited.as_secs_f64());
    }

    /// An AWS call failed.
    pub fn aws_error(&self, labels: AwsErrorLabels) {
        self.aws_errors.get_or_create(&labels).inc();
    }

    /// A report ended with `result`.
    pub fn report(&self, result: ReportResult) {
        let label = result.label();
        self.reports
            .get_or_create(&ResultLabels { result: label })
            .inc();
    }

    /// A distribution cache lookup hit (`true`) or missed.
    pub fn cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&ResultLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests;
