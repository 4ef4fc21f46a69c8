//! `attini-runner replay` against real runs on the emulator: a job that failed in serve mode
//! fails again locally with the same error and the cause the runner reported, from the
//! distribution version it ran even after the object was replaced; a job that succeeded gives
//! the same output; secret references are read only with `--resolve-secrets`, and a literal
//! secret from the history is printed nowhere.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use serde_json::{Value, json};

use crate::job_logs::{Printed, cli, moto_world, printed_lines, run_cli, runner_shipping_to};
use crate::world::*;

/// A bucket that keeps every version of its objects.
async fn versioned_bucket(world: &World) -> String {
    let bucket = world.bucket("dist").await;
    let versioning = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .build();
    world
        .clients
        .s3
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(versioning)
        .send()
        .await
        .unwrap();
    bucket
}

/// A serve runner of a new queue, its stderr kept, and a state machine sending `job` (plus
/// the state's name as its step name).
async fn served(world: &World, name: &str, job: Value) -> (tokio::process::Child, Printed, String) {
    let queue = world.fifo_queue(name).await;
    let group = world.unique(&format!("/attini-runner/{name}"));
    let (runner, printed) = runner_shipping_to(world, &queue, &group).await;
    let mut body = job;
    body["stepName.$"] = json!("$$.State.Name");
    let machine = world
        .state_machine(name, &native_machine(&queue, body))
        .await;
    (runner, printed, machine)
}

/// The `field` of a runner's JSON line.
fn field(line: &str, field: &str) -> String {
    let json: Value = serde_json::from_str(line).unwrap();
    json[field].as_str().unwrap_or_default().to_string()
}

/// The JSON after `label` on a line of `stdout`.
fn labelled(stdout: &str, label: &str) -> Value {
    let line = stdout.lines().find(|l| l.starts_with(label));
    let line = line.unwrap_or_else(|| panic!("no {label} line: {stdout}"));
    serde_json::from_str(line[label.len()..].trim()).unwrap()
}

/// Waits until the clock is in a later second than `after` (S3 keeps times in seconds).
async fn next_second(after: SystemTime) {
    let second = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    while second(SystemTime::now()) <= second(after) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_serve_job_fails_again_locally_with_the_same_error_and_cause() {
    let world = moto_world().await;
    let bucket = versioned_bucket(&world).await;
    let check =
        "#!/bin/bash\necho checking the schema\necho 'column users.email is missing' >&2\nexit 3\n";
    world
        .put(&bucket, "app.zip", zip_bytes(&[("check.sh", check, 0o755)]))
        .await;
    let job =
        json!({"commands": ["./check.sh"], "distribution": {"bucket": bucket, "key": "app.zip"}});
    let (_runner, printed, machine) = served(&world, "replay-failed", job).await;
    let arn = world.start(&machine, "failed", &json!({})).await;
    let done = world.finished(&arn).await;
    assert_eq!(done.status, "FAILED");
    let finished = printed_lines(&printed, &["job finished"], 1)
        .await
        .remove(0);
    // The object is replaced after the run: the replay must use the version that ran.
    next_second(SystemTime::now()).await;
    world
        .put(
            &bucket,
            "app.zip",
            zip_bytes(&[("check.sh", "#!/bin/bash\nexit 0\n", 0o755)]),
        )
        .await;

    let (code, stdout, stderr) = run_cli(&world, &["replay", &arn]).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let original = labelled(&stdout, "original:");
    let replay = labelled(&stdout, "replay:");
    assert_eq!(original["status"], "FAILED");
    assert_eq!(replay["status"], "FAILED");
    assert_eq!(replay["error"], original["error"], "{stdout}");
    assert_eq!(replay["error"].as_str().unwrap(), field(&finished, "error"));
    assert_eq!(
        replay["cause"].as_str().unwrap(),
        field(&finished, "cause"),
        "{stdout}"
    );
    assert!(
        stdout.contains("same: the replay ended as the original did"),
        "{stdout}"
    );
    assert!(stderr.contains("checking the schema"), "{stderr}");
    assert!(
        stderr.contains("replaying step Run of failed (1 commands)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_succeeded_job_replays_to_the_same_output_and_secrets_need_a_flag() {
    let world = moto_world().await;
    world
        .clients
        .secrets
        .ssm
        .put_parameter()
        .name("/replay/db")
        .value("pa55word-xyz")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let job = json!({
        "commands": [
            "test \"$DB\" = pa55word-xyz",
            "echo \"key is $API_KEY\"",
            "echo '{\"rows\": 42}' > $ATTINI_OUTPUT",
        ],
        "secretEnvironment": {"DB": {"ssmParameter": "/replay/db"}, "API_KEY": "literal-k3y-value"},
    });
    let (_runner, _, machine) = served(&world, "replay-ok", job).await;
    let arn = world.start(&machine, "ok", &json!({})).await;
    let done = world.finished(&arn).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");

    let (code, stdout, stderr) = run_cli(&world, &["replay", &arn, "--step", "Run"]).await;
    assert_eq!(code, 64, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(r#"the job reads secrets: DB (SSM parameter "/replay/db")"#),
        "{stderr}"
    );
    assert!(stderr.contains("--resolve-secrets"), "{stderr}");

    let out = cli(&world, &["replay", &arn, "--resolve-secrets"])
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(labelled(&stdout, "replay:")["output"], json!({"rows": 42}));
    assert_eq!(
        labelled(&stdout, "original:")["output"],
        json!({"rows": 42})
    );
    assert!(
        stdout.contains("same: the replay ended as the original did"),
        "{stdout}"
    );
    assert!(stderr.contains("key is ***"), "{stderr}");
    for secret in ["literal-k3y-value", "pa55word-xyz"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{stdout}\n{stderr}"
        );
    }
}
