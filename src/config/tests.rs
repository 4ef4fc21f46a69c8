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
    // The stop timeout (120 s) less the kill grace (10 s) and the answer (5 s).
    assert_eq!(s.worker.drain_grace, Duration::from_secs(105));
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
fn the_drain_grace_is_set_or_made_from_the_stop_timeout() {
    let grace = |pairs: &[(&str, &str)]| parse(pairs).unwrap().worker.drain_grace;
    assert_eq!(
        grace(&[("ATTINI_DRAIN_GRACE", "30")]),
        Duration::from_secs(30)
    );
    let spot = [("ATTINI_STOP_TIMEOUT", "60"), ("ATTINI_KILL_GRACE", "3")];
    assert_eq!(grace(&spot), Duration::from_secs(52));
    let short = [("ATTINI_STOP_TIMEOUT", "5"), ("ATTINI_KILL_GRACE", "10")];
    assert_eq!(grace(&short), Duration::ZERO);
    assert!(parse(&[("ATTINI_STOP_TIMEOUT", "0")]).is_err());
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

#[test]
fn aws_timeouts_region_and_endpoints_are_read_from_the_lookup() {
    let s = parse(&[
        ("ATTINI_AWS_CONNECT_TIMEOUT", "2"),
        ("ATTINI_AWS_ATTEMPT_TIMEOUT", "7"),
        ("ATTINI_AWS_OPERATION_TIMEOUT", "30"),
        ("ATTINI_AWS_REGION", "eu-north-1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
    ])
    .unwrap();
    assert_eq!(s.aws.timeouts.connect, Duration::from_secs(2));
    assert_eq!(s.aws.timeouts.attempt, Duration::from_secs(7));
    assert_eq!(s.aws.timeouts.operation, Duration::from_secs(30));
    assert_eq!(
        s.aws.region.as_deref(),
        Some("eu-north-1"),
        "no SDK region set"
    );
    assert_eq!(s.sdk_region, None);
    assert!(s.aws.path_style);
    assert_eq!(s.aws.ec2_endpoint.as_deref(), Some("http://127.0.0.1:4566"));

    // The SDK's own variables win; an empty one counts as unset.
    let s = parse(&[
        ("AWS_REGION", ""),
        ("AWS_DEFAULT_REGION", "us-west-2"),
        ("ATTINI_AWS_REGION", "eu-north-1"),
        ("AWS_ENDPOINT_URL_S3", "http://s3.local"),
        ("AWS_ENDPOINT_URL_EC2", "http://ec2.local"),
    ])
    .unwrap();
    assert_eq!(s.sdk_region.as_deref(), Some("us-west-2"));
    assert_eq!(s.aws.region, None);
    assert!(s.aws.path_style, "an S3 endpoint alone means path style");
    assert_eq!(s.aws.ec2_endpoint.as_deref(), Some("http://ec2.local"));
    let s = parse(&[("AWS_REGION", "ap-south-1")]).unwrap();
    assert_eq!(s.sdk_region.as_deref(), Some("ap-south-1"));
    assert!(!s.aws.path_style);
    assert_eq!(s.aws.ec2_endpoint, None);

    // Even with a bad setting, the clients can be built (to report it).
    let env = Environment::of([
        ("ATTINI_AWS_ATTEMPT_TIMEOUT", "never"),
        ("ATTINI_AWS_REGION", "eu-north-1"),
        ("AWS_ENDPOINT_URL", "http://x"),
    ]);
    let lenient = aws_lenient(&env);
    assert_eq!(lenient.region.as_deref(), Some("eu-north-1"));
    assert!(lenient.path_style);
    assert_eq!(lenient.timeouts, crate::aws::AwsTimeouts::default());
}

#[test]
fn job_role_settings_are_checked_and_jobs_inherit_only_what_they_read() {
    let s = parse(&[
        (
            "ATTINI_JOB_ROLE_ARN",
            "arn:aws:iam::123456789012:role/deploy",
        ),
        ("ATTINI_JOB_ROLE_SESSION_SECONDS", "1800"),
        ("ATTINI_JOB_ROLE_REFRESH_SECONDS", "60"),
        ("AWS_REGION", "eu-north-1"),
    ])
    .unwrap();
    let roles = &s.job_roles;
    assert_eq!(
        roles.default_role.as_deref(),
        Some("arn:aws:iam::123456789012:role/deploy")
    );
    assert_eq!(roles.session, Duration::from_secs(1800));
    assert_eq!(roles.refresh_margin, Duration::from_secs(60));
    assert_eq!(roles.region_set, ["AWS_REGION"]);
    assert!(roles.withheld.iter().any(|n| n == "AWS_SECRET_ACCESS_KEY"));
    assert!(roles.withheld.iter().any(|n| n == "ATTINI_QUEUE_URL"));
    for read_by_jobs in FOR_JOBS {
        assert!(
            !roles.withheld.iter().any(|n| n == read_by_jobs),
            "{read_by_jobs}"
        );
    }
    assert_eq!(parse(&[]).unwrap().job_roles.default_role, None);
    let e = parse(&[("ATTINI_JOB_ROLE_ARN", "deploy")]).unwrap_err();
    assert_eq!(e.key, "ATTINI_JOB_ROLE_ARN");
    let e = parse(&[
        ("ATTINI_JOB_ROLE_SESSION_SECONDS", "900"),
        ("ATTINI_JOB_ROLE_REFRESH_SECONDS", "900"),
    ])
    .unwrap_err();
    assert_eq!(e.key, "ATTINI_JOB_ROLE_REFRESH_SECONDS");
    let otel = job_role_withheld(["OTEL_EXPORTER_OTLP_ENDPOINT", "HOME"].into_iter());
    assert!(otel.iter().any(|n| n == "OTEL_EXPORTER_OTLP_ENDPOINT"));
    assert!(!otel.iter().any(|n| n == "HOME"));
}

#[test]
fn flags_and_the_ops_address_accept_what_they_say() {
    for (raw, want) in [
        ("true", true),
        ("1", true),
        (" YES ", true),
        ("false", false),
        ("0", false),
        ("no", false),
    ] {
        let s = parse(&[("ATTINI_REFUSE_LITERAL_SECRETS", raw)]).unwrap();
        assert_eq!(s.refuse_literal_secrets, want, "{raw}");
    }
    assert!(!parse(&[]).unwrap().refuse_literal_secrets);
    let e = parse(&[("ATTINI_REFUSE_LITERAL_SECRETS", "maybe")]).unwrap_err();
    assert_eq!(e.expected, "`true` or `false`");

    assert_eq!(ops_addr(None).unwrap(), Some(DEFAULT_OPS_ADDR));
    assert_eq!(ops_addr(Some(" OFF ".into())).unwrap(), None);
    assert_eq!(
        ops_addr(Some("0.0.0.0:9000".into())).unwrap(),
        Some("0.0.0.0:9000".parse().unwrap())
    );
    assert!(ops_addr(Some("localhost".into())).is_err());
    let s = parse(&[("ATTINI_OPS_ADDR", "127.0.0.1:0")]).unwrap();
    assert_eq!(s.ops_addr, Some("127.0.0.1:0".parse().unwrap()));
}

#[test]
fn the_tool_cache_seed_is_an_s3_object() {
    assert_eq!(parse(&[]).unwrap().tool_cache_seed, None);
    let s = parse(&[("ATTINI_TOOL_CACHE_SEED", " s3://b/caches/npm.zip ")]).unwrap();
    assert_eq!(
        s.tool_cache_seed,
        Some(("b".to_string(), "caches/npm.zip".to_string()))
    );
    for bad in [
        "b/key.zip",
        "s3://b",
        "s3://b/",
        "s3:///key.zip",
        "https://b/k",
    ] {
        let e = parse(&[("ATTINI_TOOL_CACHE_SEED", bad)]).unwrap_err();
        assert_eq!(e.key, "ATTINI_TOOL_CACHE_SEED", "{bad}");
        assert_eq!(e.value, bad);
        assert!(e.expected.contains("s3://BUCKET/KEY"), "{bad}");
    }
}

#[test]
fn the_receive_wait_is_sqss_longest_poll_unless_set_lower() {
    assert_eq!(
        parse(&[]).unwrap().worker.receive_wait,
        Duration::from_secs(20)
    );
    let s = parse(&[("ATTINI_RECEIVE_WAIT", "2")]).unwrap();
    assert_eq!(s.worker.receive_wait, Duration::from_secs(2));
    for bad in ["0", "21"] {
        let e = parse(&[("ATTINI_RECEIVE_WAIT", bad)]).unwrap_err();
        assert_eq!(e.expected, "a whole number from 1 to 20", "{bad}");
    }
}
