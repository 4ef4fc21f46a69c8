//! The README's copy-paste examples run as written: both `demo.py` scripts against an emulator
//! of their own, and `scripts/bench.py` with a tiny job count as a smoke test (it prints
//! figures; nothing here looks at them). Needs `python3` with boto3, which `./scripts/test`
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
async fn the_benchmark_runs() {
    let out = python(&["scripts/bench.py", BIN, "3"], None).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("jobs per run:                 3"),
        "{stdout}"
    );
    assert!(stdout.contains("ratio runner / minimal:"), "{stdout}");
}
