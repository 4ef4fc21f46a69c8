//! The EMF documents checked against the rules of the CloudWatch Embedded Metric Format
//! specification: a root `_aws` with an integer millisecond `Timestamp` and one
//! `CloudWatchMetrics` directive; a namespace of 1 to 255 characters; dimension sets of at
//! most 30 keys, each key a string member of the root; at most 100 metric definitions, each
//! with a name of 1 to 255 characters and a valid unit, each name a member of the root holding
//! a number or an array of at most 100 numbers.

use super::*;

const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The rule broken by `doc`, if any.
fn violation(doc: &Value) -> Option<String> {
    let Some(root) = doc.as_object() else {
        return Some("not a JSON object".into());
    };
    let aws = root.get("_aws").and_then(Value::as_object);
    let Some(aws) = aws else {
        return Some("no _aws object".into());
    };
    if !aws.get("Timestamp").is_some_and(Value::is_u64) {
        return Some("Timestamp is not a whole number of milliseconds".into());
    }
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array);
    let Some([directive]) = directives.map(Vec::as_slice) else {
        return Some("CloudWatchMetrics is not one directive".into());
    };
    let namespace = directive["Namespace"].as_str().unwrap_or_default();
    if namespace.is_empty() || namespace.len() > 255 {
        return Some(format!("bad namespace {namespace:?}"));
    }
    let Some(sets) = directive["Dimensions"].as_array() else {
        return Some("no Dimensions array".into());
    };
    for set in sets {
        let Some(keys) = set.as_array() else {
            return Some(format!("dimension set {set} is not an array"));
        };
        if keys.len() > 30 {
            return Some("more than 30 dimensions".into());
        }
        for key in keys {
            let Some(key) = key.as_str() else {
                return Some(format!("dimension key {key} is not a string"));
            };
            if !root.get(key).is_some_and(Value::is_string) {
                return Some(format!("dimension {key} has no string value"));
            }
        }
    }
    let Some(metrics) = directive["Metrics"].as_array() else {
        return Some("no Metrics array".into());
    };
    if metrics.len() > 100 {
        return Some("more than 100 metrics".into());
    }
    for metric in metrics {
        let name = metric["Name"].as_str().unwrap_or_default();
        if name.is_empty() || name.len() > 255 {
            return Some(format!("bad metric name {name:?}"));
        }
        let unit = metric["Unit"].as_str().unwrap_or_default();
        if !UNITS.contains(&unit) {
            return Some(format!("{name}: unit {unit:?} is not a CloudWatch unit"));
        }
        match root.get(name) {
            Some(Value::Number(_)) => {}
            Some(Value::Array(values))
                if values.len() <= MAX_SAMPLES && values.iter().all(Value::is_number) => {}
            other => {
                return Some(format!(
                    "{name}: value {other:?} is not a number or an array of at most 100"
                ));
            }
        }
    }
    None
}

fn busy_interval() -> Interval {
    let mut i = Interval {
        slots: (2, 5),
        draining: 1,
        ..Interval::default()
    };
    i.jobs.insert(("commands".into(), "succeeded".into()), 3);
    i.jobs.insert(("cdk".into(), "failed".into()), 1);
    i.job_seconds = vec![0.5; 150.min(MAX_SAMPLES)];
    i.queue_wait = vec![0.01, 0.2];
    i.aws_errors.insert(
        ("sqs".into(), "ReceiveMessage".into(), "transient".into()),
        2,
    );
    i.counts.insert("ReportsAccepted", 4);
    i
}

#[test]
fn every_document_follows_the_emf_rules() {
    let docs = documents(&busy_interval(), "jobs.fifo", 1_700_000_000_123);
    assert_eq!(
        docs.len(),
        1 + 2 + 1,
        "main, one per kind and outcome, one per error"
    );
    for doc in &docs {
        assert_eq!(violation(doc), None, "{doc}");
    }
    let main = &docs[0];
    assert_eq!(main["Queue"], "jobs.fifo");
    assert_eq!(main["SlotsInUse"], 2);
    assert_eq!(main["SlotsFree"], 3);
    assert_eq!(main["Draining"], 1);
    assert_eq!(main["JobsSucceeded"], 3);
    assert_eq!(main["JobsFailed"], 1);
    assert_eq!(main["AwsErrors"], 2);
    assert_eq!(main["ReportsAccepted"], 4);
    assert_eq!(main["ReportsUndelivered"], 0);
    assert_eq!(main["QueueWait"], json!([0.01, 0.2]));
    assert_eq!(main["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
    let by_kind = &docs[1];
    assert_eq!(
        by_kind["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Queue", "Kind", "Outcome"]])
    );
    assert_eq!(
        (by_kind["Kind"].as_str(), by_kind["Jobs"].as_u64()),
        (Some("cdk"), Some(1))
    );
    assert_eq!(docs[3]["Operation"], "ReceiveMessage");
    assert_eq!(docs[3]["Class"], "transient");
}

#[test]
fn the_checker_catches_broken_documents() {
    let good = documents(&busy_interval(), "q", 1).remove(0);
    let mut no_dimension_value = good.clone();
    no_dimension_value.as_object_mut().unwrap().remove("Queue");
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Jobs");
    let mut missing_value = good.clone();
    missing_value.as_object_mut().unwrap().remove("SlotsFree");
    let mut too_many = good.clone();
    too_many["QueueWait"] = json!(vec![1.0; 101]);
    let mut no_metrics = good.clone();
    no_metrics["_aws"]["CloudWatchMetrics"][0]
        .as_object_mut()
        .unwrap()
        .remove("Metrics");
    let mut no_dimensions = good.clone();
    no_dimensions["_aws"]["CloudWatchMetrics"][0]
        .as_object_mut()
        .unwrap()
        .remove("Dimensions");
    let mut float_time = good;
    float_time["_aws"]["Timestamp"] = json!(1.5);
    for broken in [
        json!([1, 2]),
        no_metrics,
        no_dimensions,
        no_dimension_value,
        bad_unit,
        missing_value,
        too_many,
        float_time,
    ] {
        assert!(violation(&broken).is_some(), "not caught: {broken}");
    }
}

#[test]
fn an_idle_interval_has_zero_counts_and_no_samples() {
    let docs = documents(&Interval::default(), "q", 5);
    assert_eq!(docs.len(), 1);
    assert_eq!(violation(&docs[0]), None);
    assert_eq!(docs[0]["JobsSucceeded"], 0);
    assert!(
        docs[0].get("JobDuration").is_none(),
        "no empty sample arrays"
    );
}

#[test]
fn each_reading_gives_what_changed_since_the_last_and_gauges_keep_their_value() {
    use crate::metrics::{Figures, ReportResult};
    // Figures of the test's own: no other test's recording reaches them.
    let m = Figures::new();
    let mut reader = EmfReader::default();
    let idle = reader.read(&m, "q", 1);
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert_eq!(idle[0]["JobsSucceeded"], 0);
    m.slots.set_total(4);
    m.slots.started();
    m.job_finished("commands", Outcome::Succeeded, Duration::from_millis(1500));
    m.report(ReportResult::Accepted);
    m.cache_lookup(false);
    let first = reader.read(&m, "q", 2);
    assert_eq!(first[0]["JobsSucceeded"], 1);
    assert_eq!(first[0]["JobDuration"], json!([1.5]));
    assert_eq!(first[0]["DistributionCacheMisses"], 1);
    assert_eq!(first[0]["ReportsAccepted"], 1);
    assert_eq!(first[0]["SlotsInUse"], 1);
    assert_eq!(first[0]["SlotsFree"], 3);
    assert_eq!(first[1]["Kind"], "commands");
    let second = reader.read(&m, "q", 3);
    assert_eq!(second[0]["JobsSucceeded"], 0);
    assert_eq!(second[0]["SlotsInUse"], 1, "a gauge keeps its value");
    assert!(second[0].get("JobDuration").is_none());
    assert_eq!(second.len(), 1);
    // Counts are the interval's: one more report, none more cache lookups.
    m.report(ReportResult::Accepted);
    let third = reader.read(&m, "q", 4);
    assert_eq!(third[0]["ReportsAccepted"], 1);
    assert_eq!(third[0]["DistributionCacheMisses"], 0);
}

#[test]
fn draining_broken_and_each_failing_operation_are_reported() {
    use crate::metrics::{AwsErrorLabels, Figures};
    let m = Figures::new();
    let mut reader = EmfReader::default();
    let calm = reader.read(&m, "q", 1);
    assert_eq!(
        (&calm[0]["Draining"], &calm[0]["Broken"]),
        (&json!(0), &json!(0))
    );
    m.set_draining(true);
    m.set_broken();
    let throttled = AwsErrorLabels {
        service: "sqs",
        operation: "ReceiveMessage",
        class: "transient",
    };
    m.aws_error(throttled.clone());
    m.aws_error(throttled);
    let docs = reader.read(&m, "q", 2);
    assert_eq!(
        (&docs[0]["Draining"], &docs[0]["Broken"]),
        (&json!(1), &json!(1))
    );
    let errors: Vec<&Value> = docs
        .iter()
        .filter(|d| d.get("Operation").is_some())
        .collect();
    assert_eq!(errors.len(), 1, "{docs:?}");
    assert_eq!(errors[0]["Operation"], "ReceiveMessage");
    assert_eq!(errors[0]["AwsErrors"], 2);
}

#[test]
fn durations_in_one_bucket_keep_their_mean_and_spread_ones_their_bucket_bounds() {
    let m = crate::metrics::Figures::new();
    let mut reader = EmfReader::default();
    // 3 s and 4 s share the (2.5, 5] bucket.
    for ms in [3000, 4000] {
        m.job_finished("commands", Outcome::Failed, Duration::from_millis(ms));
    }
    let same = reader.read(&m, "q", 1);
    assert_eq!(same[0]["JobDuration"], json!([3.5, 3.5]));
    m.job_finished("commands", Outcome::Failed, Duration::from_millis(200));
    m.job_finished("cdk", Outcome::Failed, Duration::from_secs(50));
    m.job_finished("cdk", Outcome::Failed, Duration::from_secs(20_000));
    let spread = reader.read(&m, "q", 2);
    assert_eq!(
        spread[0]["JobDuration"],
        json!([0.5, 60.0, 14400.0]),
        "upper bounds; the open bucket gives the last finite one"
    );
    assert_eq!(spread[0]["JobsFailed"], 3);
    // One observation in one bucket: its own value, not one diluted by earlier intervals.
    m.job_finished("commands", Outcome::Failed, Duration::from_millis(3000));
    let one = reader.read(&m, "q", 3);
    assert_eq!(one[0]["JobDuration"], json!([3.0]));
}

#[test]
fn more_than_a_hundred_observations_keep_each_buckets_share() {
    let m = crate::metrics::Figures::new();
    for _ in 0..300 {
        m.queue_waited(Duration::from_millis(5));
    }
    for _ in 0..100 {
        m.queue_waited(Duration::from_secs(20));
    }
    let docs = EmfReader::default().read(&m, "q", 1);
    let waits = docs[0]["QueueWait"].as_array().unwrap();
    assert_eq!(waits.len(), MAX_SAMPLES);
    let short = waits.iter().filter(|v| v.as_f64() == Some(0.01)).count();
    assert_eq!((short, waits.len() - short), (75, 25));
    assert_eq!(violation(&docs[0]), None);
}

/// A set every interval, the first one interval in, and a last one at the stop; each
/// document stamped with the time it was read.
#[tokio::test(start_paused = true)]
async fn a_set_is_written_every_interval_and_a_last_one_at_the_stop() {
    use std::sync::{Arc, Mutex};
    let sets: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let stop = CancellationToken::new();
    let start = tokio::time::Instant::now();
    // Read from the clock here, not through now_ms (the function under test).
    let wall = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let before = wall();
    let writer = tokio::spawn(emit_every(
        Arc::new(crate::metrics::Figures::new()),
        Duration::from_secs(60),
        "q".into(),
        stop.clone(),
        {
            let sets = sets.clone();
            move |out: String| {
                sets.lock().unwrap().push((start.elapsed(), out));
                async {}
            }
        },
    ));
    tokio::time::sleep(Duration::from_secs(150)).await;
    stop.cancel();
    writer.await.unwrap();
    let sets = sets.lock().unwrap().clone();
    let at: Vec<u64> = sets.iter().map(|(t, _)| t.as_secs()).collect();
    assert_eq!(at, [60, 120, 150]);
    let after = wall();
    for (_, out) in &sets {
        let doc: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        let stamp = doc["_aws"]["Timestamp"].as_u64().unwrap();
        assert!(
            (before..=after).contains(&stamp),
            "{stamp} not in {before}..={after}"
        );
    }
}
