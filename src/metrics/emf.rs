//! CloudWatch Embedded Metric Format (`ATTINI_METRICS=emf`): the figures of [`super`] as JSON
//! lines on stdout, one set per interval, which the awslogs driver turns into CloudWatch
//! metrics without an agent. Namespace [`NAMESPACE`]; every document has the dimension
//! `Queue` (the job queue's name). Per interval:
//!
//! - `[Queue]`: `SlotsInUse`, `SlotsFree`, `Draining` (last values), `JobsSucceeded`,
//!   `JobsFailed`, `JobsInterrupted`, `JobsCancelled`, `ReportsAccepted`, `ReportsTaskGone`,
//!   `ReportsRejected`, `ReportsUndelivered`, `AwsErrors`, `DistributionCacheHits`, `DistributionCacheMisses`
//!   (counts in the interval), `JobDuration` and `QueueWait` (up to 100 samples, seconds);
//! - `[Queue, Kind, Outcome]`: `Jobs`, one document per kind and outcome seen;
//! - `[Queue, Service, Operation, Class]`: `AwsErrors`, one per failing operation and class.
//!
//! The interval is kept by the [`super::Figures`] object it belongs to ([`EmfRecorder`]); no
//! static. Recording costs one relaxed load when EMF is off, else one short lock.
//! Cancellation: the writer ([`write_every`]) writes a last set when its token is cancelled,
//! then returns.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::{AwsErrorLabels, Outcome, ReportResult};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "AttiniRunner";
/// Most values one EMF metric may carry.
pub const MAX_SAMPLES: usize = 100;

/// A gauge kept across intervals.
#[derive(Debug, Clone, Copy)]
pub enum Gauge {
    /// Slots in use of a total.
    Slots,
    /// Draining: 1 or 0.
    Draining,
}

/// A sampled duration.
#[derive(Debug, Clone, Copy)]
pub enum Sample {
    /// Time a message waited in the queue.
    QueueWait,
}

/// A plain count.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// A report with its result.
    Report(ReportResult),
    /// A cache lookup: hit (`true`) or miss.
    Cache(bool),
}

#[derive(Debug, Default)]
struct Interval {
    slots: Option<(usize, usize)>,
    draining: usize,
    jobs: BTreeMap<(&'static str, &'static str), u64>,
    job_seconds: Vec<f64>,
    queue_wait: Vec<f64>,
    aws_errors: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    counts: BTreeMap<&'static str, u64>,
}

/// The EMF figures of the current interval; off (recording nothing) until
/// [`EmfRecorder::enable`]. Held by the [`super::Figures`] it records for.
#[derive(Debug, Default)]
pub struct EmfRecorder {
    on: AtomicBool,
    interval: Mutex<Option<Interval>>,
}

impl EmfRecorder {
    /// Starts collecting (when `ATTINI_METRICS=emf`).
    pub fn enable(&self) {
        *self.lock() = Some(Interval::default());
        self.on.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Interval>> {
        self.interval.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, f: impl FnOnce(&mut Interval)) {
        if self.on.load(Ordering::Relaxed)
            && let Some(interval) = self.lock().as_mut()
        {
            f(interval);
        }
    }

    pub(super) fn gauge(&self, which: Gauge, value: usize, total: usize) {
        self.record(|i| match which {
            Gauge::Slots => i.slots = Some((value, total)),
            Gauge::Draining => i.draining = value,
        });
    }

    pub(super) fn job(&self, kind: &'static str, outcome: Outcome, took: Duration) {
        self.record(|i| {
            *i.jobs.entry((kind, outcome.label())).or_default() += 1;
            push(&mut i.job_seconds, took);
        });
    }

    pub(super) fn sample(&self, which: Sample, value: Duration) {
        self.record(|i| match which {
            Sample::QueueWait => push(&mut i.queue_wait, value),
        });
    }

    pub(super) fn aws_error(&self, labels: &AwsErrorLabels) {
        self.record(|i| {
            *i.aws_errors
                .entry((labels.service, labels.operation, labels.class))
                .or_default() += 1;
        });
    }

    pub(super) fn count(&self, which: Count) {
        let name = match which {
            Count::Report(ReportResult::Accepted) => "ReportsAccepted",
            Count::Report(ReportResult::TaskGone) => "ReportsTaskGone",
            Count::Report(ReportResult::Rejected) => "ReportsRejected",
            Count::Report(ReportResult::Undelivered) => "ReportsUndelivered",
            Count::Cache(true) => "DistributionCacheHits",
            Count::Cache(false) => "DistributionCacheMisses",
        };
        self.record(|i| *i.counts.entry(name).or_default() += 1);
    }

    /// Ends the current interval: its EMF documents, stamped `timestamp_ms`, for queue `queue`.
    /// Empty when EMF is off.
    pub fn take(&self, queue: &str, timestamp_ms: u64) -> Vec<Value> {
        let mut guard = self.lock();
        let Some(interval) = guard.as_mut() else {
            return Vec::new();
        };
        let done = std::mem::take(interval);
        // Gauges are state, not per-interval figures.
        interval.slots = done.slots;
        interval.draining = done.draining;
        drop(guard);
        documents(&done, queue, timestamp_ms)
    }
}

fn push(samples: &mut Vec<f64>, value: Duration) {
    if samples.len() < MAX_SAMPLES {
        samples.push(value.as_secs_f64());
    }
}

fn documents(i: &Interval, queue: &str, timestamp_ms: u64) -> Vec<Value> {
    let (in_use, total) = i.slots.unwrap_or_default();
    let jobs = |outcome: Outcome| {
        let n: u64 = i
            .jobs
            .iter()
            .filter(|((_, o), _)| *o == outcome.label())
            .map(|(_, n)| n)
            .sum();
        n
    };
    let mut main: Vec<(&str, &str, Value)> = vec![
        ("SlotsInUse", "Count", json!(in_use)),
        ("SlotsFree", "Count", json!(total.saturating_sub(in_use))),
        ("Draining", "None", json!(i.draining)),
        ("JobsSucceeded", "Count", json!(jobs(Outcome::Succeeded))),
        ("JobsFailed", "Count", json!(jobs(Outcome::Failed))),
        (
            "JobsInterrupted",
            "Count",
            json!(jobs(Outcome::Interrupted)),
        ),
        ("JobsCancelled", "Count", json!(jobs(Outcome::Cancelled))),
        (
            "AwsErrors",
            "Count",
            json!(i.aws_errors.values().sum::<u64>()),
        ),
    ];
    for name in [
        "ReportsAccepted",
        "ReportsTaskGone",
        "ReportsRejected",
        "ReportsUndelivered",
        "DistributionCacheHits",
        "DistributionCacheMisses",
    ] {
        main.push((
            name,
            "Count",
            json!(i.counts.get(name).copied().unwrap_or(0)),
        ));
    }
    for (name, samples) in [
        ("JobDuration", &i.job_seconds),
        ("QueueWait", &i.queue_wait),
    ] {
        if !samples.is_empty() {
            main.push((name, "Seconds", json!(samples)));
        }
    }
    let mut docs = vec![document(timestamp_ms, &[("Queue", queue)], &main)];
    for ((kind, outcome), n) in &i.jobs {
        let dims = [("Queue", queue), ("Kind", kind), ("Outcome", outcome)];
        docs.push(document(
            timestamp_ms,
            &dims,
            &[("Jobs", "Count", json!(n))],
        ));
    }
    for ((service, operation, class), n) in &i.aws_errors {
        let dims = [
            ("Queue", queue),
            ("Service", service),
            ("Operation", operation),
            ("Class", class),
        ];
        docs.push(document(
            timestamp_ms,
            &dims,
            &[("AwsErrors", "Count", json!(n))],
        ));
    }
    docs
}

/// One EMF document: the `_aws` metadata, the dimension values and the metric values.
fn document(timestamp_ms: u64, dims: &[(&str, &str)], metrics: &[(&str, &str, Value)]) -> Value {
    let mut root = Map::new();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let keys: Vec<&str> = dims.iter().map(|(k, _)| *k).collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [keys],
                "Metrics": definitions,
            }],
        }),
    );
    for (key, value) in dims {
        root.insert((*key).into(), json!(value));
    }
    for (name, _, value) in metrics {
        root.insert((*name).into(), value.clone());
    }
    Value::Object(root)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Writes one set of `figures`' documents to stdout every `every`, and a last one when
/// `stop` is cancelled. Each document is one line written whole.
pub async fn write_every(
    figures: std::sync::Arc<super::Figures>,
    every: Duration,
    queue: String,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            _ = stop.cancelled() => true,
        };
        let mut out = String::new();
        for doc in figures.emf.take(&queue, now_ms()) {
            out.push_str(&doc.to_string());
            out.push('\n');
        }
        // A blocked stdout must not hold up a runtime thread.
        let _ = tokio::task::spawn_blocking(move || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush());
        })
        .await;
        if last {
            return;
        }
    }
}

#[cfg(test)]
#[path = "emf_tests.rs"]
mod tests;
