//! The README's copy-paste examples run as written: both `demo.py` scripts against an emulator
//! of their own, and the benchmark suite `scripts/bench.py --quick` as a smoke test (every
//! scenario prints a finite figure and a reference; no figure is compared with a target). Needs `python3` with boto3, which `./scripts/test`
//! installs.

use std::process::Output;
use std::time::Duration;

use crate::emulator::Emulator;

const BIN: &str = env!("CARGO_BIN_EXE_attini-runner");

async fn python(args: &[&str], endpoint: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new("python3");
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The demos pass the environment on to the runner: tests run side by side, so its ops
        // server takes any free port rather than the fixed default.
        .env("ATTINI_OPS_ADDR", "127.0.0.1:0")
        .kill_on_drop(true);
    if let Some(endpoint) = endpoint {
        command.env("AWS_ENDPOINT_URL", endpoint);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the script did not finish within three minutes")
        .expect("python3 is needed: run ./scripts/test");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_demo_succeeds() {
    let emulator = Emulator::start_kind("ministack").await;
    let out = python(
        &["examples/standalone/demo.py", BIN],
        Some(&emulator.endpoint),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"status\": \"SUCCEEDED\""), "{stdout}");
    assert!(stdout.contains("Hello, Step Functions"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attini_demo_succeeds_and_prints_the_job_log() {
    let emulator = Emulator::start_kind("ministack").await;
    let out = python(&["examples/attini/demo.py", BIN], Some(&emulator.endpoint)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"status\": \"SUCCEEDED\""), "{stdout}");
    assert!(
        stdout.contains("job log object: {\"timestamp\""),
        "{stdout}"
    );
    assert!(stdout.contains("runner exit code: 0"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_suite_runs_every_scenario() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let json_arg = json.to_str().unwrap();
    let out = python(
        &["scripts/bench.py", BIN, "--quick", "--json", json_arg],
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figures: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for scenario in [
        "B1", "B1own", "B1a", "B1a_own", "B2", "B3", "B4", "B4m", "B4j", "B5", "B5c", "B6",
    ] {
        let figure = &figures[scenario];
        assert!(
            figure["ours"].as_f64().is_some_and(f64::is_finite),
            "{scenario}: {figure}\n{stdout}"
        );
        assert!(
            figure["reference"].as_f64().is_some_and(|r| r > 0.0),
            "{scenario}: {figure}"
        );
        assert!(
            stdout.contains(&format!("\n{scenario:3} ")),
            "{scenario} not printed:\n{stdout}"
        );
    }
    // The reference loop in Python ran beside the Rust one, so did the Rust one running the
    // same job, and the burst's breakdown was read.
    assert!(
        figures["B3"]["boto3_ratio"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
    assert!(
        figures["B3"]["with_job_ratio"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{}",
        figures["B3"]
    );
    assert!(
        figures["B3"]["breakdown"]["requests_per_job"]["SendTaskSuccess"]
            .as_f64()
            .is_some_and(|n| n >= 1.0),
        "{}",
        figures["B3"]
    );
    assert_eq!(
        figures["B6"]["exit"], 0,
        "the output job succeeded: {}",
        figures["B6"]
    );
}

/// The README's demo commands install the emulator and boto3 at the versions the tests run
/// (`scripts/test-requirements.txt`), in a venv (a system pip refuses on current distributions).
#[test]
fn the_demo_commands_pin_the_versions_the_tests_run() {
    let readme = include_str!("../../README.md");
    let pins = include_str!("../../scripts/test-requirements.txt");
    assert!(
        readme.contains("/tmp/demo-venv/bin/pip install ministack=="),
        "the demos install into a venv"
    );
    for package in ["ministack", "boto3"] {
        let pin = pins
            .lines()
            .find(|l| l.starts_with(&format!("{package}==")))
            .unwrap_or_else(|| panic!("{package} is not pinned"));
        assert_eq!(
            readme.matches(pin).count(),
            2,
            "both demo commands install {pin}"
        );
    }
}
