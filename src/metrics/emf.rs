//! CloudWatch Embedded Metric Format (`ATTINI_METRICS=emf`): the figures of [`super`] as JSON
//! lines on stdout, one set per interval, which the awslogs driver turns into CloudWatch
//! metrics without an agent. Namespace [`NAMESPACE`]; every document has the dimension
//! `Queue` (the job queue's name). Per interval:
//!
//! - `[Queue]`: `SlotsInUse`, `SlotsFree`, `Draining`, `Broken` (last values), `JobsSucceeded`,
//!   `JobsFailed`, `JobsInterrupted`, `JobsCancelled`, `ReportsAccepted`, `ReportsTaskGone`,
//!   `ReportsRejected`, `ReportsUndelivered`, `AwsErrors`, `DistributionCacheHits`, `DistributionCacheMisses`
//!   (counts in the interval), `JobDuration` and `QueueWait` (up to 100 values, seconds);
//! - `[Queue, Kind, Outcome]`: `Jobs`, one document per kind and outcome seen;
//! - `[Queue, Service, Operation, Class]`: `AwsErrors`, one per failing operation and class.
//!
//! The writer is a periodic reader of the one registry: each interval it renders the figures,
//! reads them ([`Reading`]) and writes the difference from its last reading; it keeps no
//! figures of its own. Durations come from the histograms: an interval whose observations
//! all fell in one bucket gives their exact mean for each; otherwise each observation is
//! given as its bucket's upper bound (the last finite bound for the open bucket), so a
//! percentile is at most one bucket high. Cancellation: the writer ([`write_every`]) writes
//! a last set when its token is cancelled, then returns.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use super::reading::{Labels, Reading};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "AttiniRunner";
/// Most values one EMF metric may carry.
pub const MAX_SAMPLES: usize = 100;

/// The counts of the main document and the registry sample each is read from.
const COUNTS: [(&str, &str, &str); 6] = [
    ("ReportsAccepted", "attini_runner_reports_total", "accepted"),
    (
        "ReportsTaskGone",
        "attini_runner_reports_total",
        "task_gone",
    ),
    ("ReportsRejected", "attini_runner_reports_total", "rejected"),
    (
        "ReportsUndelivered",
        "attini_runner_reports_total",
        "undelivered",
    ),
    (
        "DistributionCacheHits",
        "attini_runner_distribution_cache_lookups_total",
        "hit",
    ),
    (
        "DistributionCacheMisses",
        "attini_runner_distribution_cache_lookups_total",
        "miss",
    ),
];

/// What one interval holds.
#[derive(Debug, Default)]
struct Interval {
    /// Slots in use and in all.
    slots: (usize, usize),
    draining: usize,
    broken: usize,
    jobs: BTreeMap<(String, String), u64>,
    job_seconds: Vec<f64>,
    queue_wait: Vec<f64>,
    aws_errors: BTreeMap<(String, String, String), u64>,
    counts: BTreeMap<&'static str, u64>,
}

/// Reads the figures once per interval and turns the difference into EMF documents.
#[derive(Debug, Default)]
pub struct EmfReader {
    last: Reading,
}

impl EmfReader {
    /// The EMF documents of what changed in `figures` since the last call (since they were
    /// made, the first time), stamped `timestamp_ms`, for queue `queue`.
    pub fn read(&mut self, figures: &super::Figures, queue: &str, timestamp_ms: u64) -> Vec<Value> {
        let now = Reading::parse(&figures.render());
        let interval = interval(&now, &self.last);
        self.last = now;
        documents(&interval, queue, timestamp_ms)
    }
}

/// The interval between reading `last` and reading `now`.
fn interval(now: &Reading, last: &Reading) -> Interval {
    let gauge = |name: &str| now.total(name, &[]).max(0.0) as usize;
    let in_use = gauge("attini_runner_slots_in_use");
    let mut i = Interval {
        slots: (in_use, in_use + gauge("attini_runner_slots_free")),
        draining: gauge("attini_runner_draining"),
        broken: gauge("attini_runner_broken"),
        ..Interval::default()
    };
    let grown = |name: &'static str| grown(now, last, name);
    let label = |labels: &Labels, key: &str| labels.get(key).cloned().unwrap_or_default();
    for (labels, n) in grown("attini_runner_jobs_total") {
        let key = (label(labels, "kind"), label(labels, "outcome"));
        *i.jobs.entry(key).or_default() += n;
    }
    for (labels, n) in grown("attini_runner_aws_errors_total") {
        let key = (
            label(labels, "service"),
            label(labels, "operation"),
            label(labels, "class"),
        );
        *i.aws_errors.entry(key).or_default() += n;
    }
    for (name, metric, result) in COUNTS {
        let with = [("result", result)];
        let delta = now.total(metric, &with) - last.total(metric, &with);
        i.counts.insert(name, delta.round().max(0.0) as u64);
    }
    i.job_seconds = samples(now, last, "attini_runner_job_duration_seconds");
    i.queue_wait = samples(now, last, "attini_runner_queue_wait_seconds");
    i
}

/// The samples of counter `name` that grew between `last` and `now`, with how much.
fn grown<'a>(
    now: &'a Reading,
    last: &'a Reading,
    name: &'a str,
) -> impl Iterator<Item = (&'a Labels, u64)> + 'a {
    now.matching(name, &[]).filter_map(move |(labels, value)| {
        let delta = (value - last.value(name, labels)).round();
        (delta >= 1.0).then_some((labels, delta as u64))
    })
}

/// The observations of histogram `name` (all label sets together) between two readings, as
/// at most [`MAX_SAMPLES`] values; see the module documentation.
fn samples(now: &Reading, last: &Reading, name: &str) -> Vec<f64> {
    let count = |r: &Reading| r.total(&format!("{name}_count"), &[]);
    let sum = |r: &Reading| r.total(&format!("{name}_sum"), &[]);
    let observed = (count(now) - count(last)).round();
    if observed < 1.0 {
        return Vec::new();
    }
    // Cumulative counts by upper bound, every label set added up.
    let bucket = format!("{name}_bucket");
    let mut cumulative: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (labels, value) in now.matching(&bucket, &[]) {
        let Some(le) = labels.get("le").and_then(|le| le.parse::<f64>().ok()) else {
            continue;
        };
        let entry = cumulative.entry(le.to_bits()).or_insert((le, 0.0));
        entry.1 += value - last.value(&bucket, labels);
    }
    let mut bounds: Vec<(f64, f64)> = cumulative.into_values().collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut per_bucket = Vec::new();
    let (mut below, mut finite) = (0.0, 0.0);
    for (le, cum) in bounds {
        let n = (cum - below).round().max(0.0) as usize;
        below = cum;
        let value = if le.is_finite() { le } else { finite };
        if le.is_finite() {
            finite = le;
        }
        if n > 0 {
            per_bucket.push((value, n));
        }
    }
    let total: usize = per_bucket.iter().map(|(_, n)| n).sum();
    if let [(_, n)] = per_bucket.as_slice() {
        let mean = (sum(now) - sum(last)) / observed;
        let mean = (mean * 1e6).round() / 1e6;
        return vec![mean; (*n).min(MAX_SAMPLES)];
    }
    // Over the cap, each bucket keeps its share (at least one value).
    let mut values = Vec::new();
    for (value, n) in per_bucket {
        let kept = if total > MAX_SAMPLES {
            (n * MAX_SAMPLES / total).max(1)
        } else {
            n
        };
        values.extend(std::iter::repeat_n(value, kept));
    }
    values.truncate(MAX_SAMPLES);
    values
}

fn documents(i: &Interval, queue: &str, timestamp_ms: u64) -> Vec<Value> {
    let (in_use, total) = i.slots;
    let jobs = |outcome: Outcome| {
        let n: u64 = i
            .jobs
            .iter()
            .filter(|((_, o), _)| o == outcome.label())
            .map(|(_, n)| n)
            .sum();
        n
    };
    let mut main: Vec<(&str, &str, Value)> = vec![
        ("SlotsInUse", "Count", json!(in_use)),
        ("SlotsFree", "Count", json!(total.saturating_sub(in_use))),
        ("Draining", "None", json!(i.draining)),
        ("Broken", "None", json!(i.broken)),
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
    emit_every(figures, every, queue, stop, |out: String| async move {
        // A blocked stdout must not hold up a runtime thread.
        let _ = tokio::task::spawn_blocking(move || {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush());
        })
        .await;
    })
    .await;
}

/// As [`write_every`], each set (its documents as lines) given to `emit`.
async fn emit_every<F, Fut>(
    figures: std::sync::Arc<super::Figures>,
    every: Duration,
    queue: String,
    stop: CancellationToken,
    mut emit: F,
) where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut reader = EmfReader::default();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let last = tokio::select! {
            _ = ticks.tick() => false,
            _ = stop.cancelled() => true,
        };
        let mut out = String::new();
        for doc in reader.read(&figures, &queue, now_ms()) {
            out.push_str(&doc.to_string());
            out.push('\n');
        }
        emit(out).await;
        if last {
            return;
        }
    }
}

#[cfg(test)]
#[path = "emf_tests.rs"]
mod tests;
