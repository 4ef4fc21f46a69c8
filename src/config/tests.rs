//! Settings: defaults, ranges, error texts and the README table.

use super::*;
use std::collections::HashMap;

fn parse(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_match_the_attini_runner() {
    let s = parse(&[]).unwrap();
    assert_eq!(s.engine.job_timeout, Duration::from_secs(3600));
    assert_eq!(s.engine.kill_grace, Duration::from_secs(10));
    assert_eq!(s.engine.limits.max_bytes, 4 << 30);
    assert_eq!(s.engine.cache_bytes, 2 << 30);
    assert_eq!(s.worker.max_jobs, 5);
    assert_eq!(s.worker.idle_ttl, None);
    assert_eq!(s.worker.drain_grace, Duration::from_secs(90));
    assert_eq!(s.attini.startup_timeout, Duration::from_secs(3600));
    assert_eq!(s.attini.config_hash, 0);
    assert_eq!(s.queue_url, None);
    assert_eq!(s.log_filter, None);
    assert_eq!(s.aws.timeouts, crate::aws::AwsTimeouts::default());
    assert_eq!(s.worker.max_lease, Duration::from_secs(43_200));
    assert_eq!(s.worker.report_retries.refused, Duration::from_secs(300));
    assert_eq!(s.worker.max_runner_failures, 5);
    assert_eq!(s.engine.workspace_timeout, Duration::from_secs(900));
    assert_eq!(s.emf_interval, None);
}

#[test]
fn this_rounds_settings_are_read_from_the_lookup() {
    let s = parse(&[
        ("ATTINI_REPORT_DENIED_RETRY", "10"),
        ("ATTINI_MAX_RUNNER_FAILURES", "0"),
        ("ATTINI_WORKSPACE_TIMEOUT", "60"),
        ("ATTINI_METRICS", " EMF "),
        ("ATTINI_METRICS_INTERVAL", "7"),
    ])
    .unwrap();
    assert_eq!(s.worker.report_retries.refused, Duration::from_secs(10));
    assert_eq!(s.worker.report_retries.transient, Duration::from_secs(600));
    assert_eq!(s.worker.max_runner_failures, 0);
    assert_eq!(s.engine.workspace_timeout, Duration::from_secs(60));
    assert_eq!(s.emf_interval, Some(Duration::from_secs(7)));
    let off = parse(&[("ATTINI_METRICS", "off"), ("ATTINI_METRICS_INTERVAL", "7")]).unwrap();
    assert_eq!(off.emf_interval, None);
    let e = parse(&[("ATTINI_METRICS", "prometheus")]).unwrap_err();
    assert_eq!(e.key, "ATTINI_METRICS");
    assert!(
        parse(&[("ATTINI_WORKSPACE_TIMEOUT", "5")]).is_err(),
        "below 10 s"
    );
}

#[test]
fn bad_values_name_the_key_and_value() {
    let e = parse(&[("ATTINI_JOB_TIMEOUT", "soon")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ATTINI_JOB_TIMEOUT=\"soon\" is not valid: a whole number from 1 to 31536000"
    );
    assert!(parse(&[("ATTINI_JOB_TIMEOUT", "0")]).is_err());
    assert_eq!(
        parse(&[("ATTINI_KILL_GRACE", " 3 ")])
            .unwrap()
            .engine
            .kill_grace,
        Duration::from_secs(3)
    );
    let e = parse(&[("ATTINI_MAX_CONCURRENT_JOBS", "101")]).unwrap_err();
    assert_eq!(e.expected, "a whole number from 1 to 100");
    let e = parse(&[("ATTINI_DISTRIBUTION_MAX_BYTES", "0")]).unwrap_err();
    assert_eq!(e.expected, "a whole number of at least 1");
}

#[test]
fn sizes_and_ttl_are_read_from_the_lookup() {
    let s = parse(&[
        ("ATTINI_DISTRIBUTION_MAX_BYTES", "1234"),
        ("ATTINI_DISTRIBUTION_CACHE_BYTES", "0"),
        ("ATTINI_RUNNER_IDLE_TTL", "7"),
        ("ATTINI_CONFIGURATION_HASH", "-42"),
        ("ATTINI_QUEUE_URL", "q"),
    ])
    .unwrap();
    assert_eq!(s.engine.limits.max_bytes, 1234);
    assert_eq!(s.engine.cache_bytes, 0);
    assert_eq!(s.worker.idle_ttl, Some(Duration::from_secs(7)));
    assert_eq!(s.attini.config_hash, -42);
    assert_eq!(s.queue_url.as_deref(), Some("q"));
    let s = parse(&[("ATTINI_CONFIGURATION_HASH", "not-a-number")]).unwrap();
    assert_eq!(s.attini.config_hash, 0);
}

#[test]
fn log_level_maps_to_a_filter_and_rust_log_wins() {
    let level = |v: &str| parse(&[("ATTINI_LOG_LEVEL", v)]).map(|s| s.log_filter);
    assert_eq!(level("DEBUG").unwrap().as_deref(), Some("debug"));
    assert_eq!(level("all").unwrap().as_deref(), Some("trace"));
    assert_eq!(level("OFF").unwrap().as_deref(), Some("off"));
    let e = level("LOUD").unwrap_err();
    assert_eq!(e.key, "ATTINI_LOG_LEVEL");
    let s = parse(&[
        ("ATTINI_LOG_LEVEL", "LOUD"),
        ("RUST_LOG", "attini_runner=debug"),
    ])
    .unwrap();
    assert_eq!(s.log_filter.as_deref(), Some("attini_runner=debug"));
}

#[test]
fn readme_settings_table_matches_the_code() {
    let readme = include_str!("../../README.md");
    let table = markdown_table();
    assert!(
        readme.contains(&table),
        "the README's settings table differs from config::ALL; replace it with:\n{table}"
    );
}

/// Prints the table (`cargo test --lib print_settings_table -- --ignored --nocapture`).
#[test]
#[ignore = "prints the README table; run by hand"]
fn print_settings_table() {
    print!("{}", markdown_table());
}
