//! `task-definition.json` as the README tells users to fill it: rendered, validated against
//! botocore's `RegisterTaskDefinition` request shape and registered with moto's ECS; then what
//! the shape cannot say: every variable is one the runner reads, set to the runner's default,
//! the drain ends before ECS's stop timeout, the work volume is where the image writes.
//! (The image test runs its health check command in the image.)

use std::collections::HashMap;

use attini_runner::config::{self, Kind, Settings};
use serde_json::Value;

use crate::emulator::Emulator;

const TEMPLATE: &str = include_str!("../../task-definition.json");

/// The template with every `${Name}` replaced; panics on a placeholder without a value.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    assert!(!text.contains("${"), "a placeholder is left: {text}");
    text
}

fn rendered() -> String {
    render(
        TEMPLATE,
        &[
            ("Family", "attini-runner"),
            (
                "Image",
                "111122223333.dkr.ecr.eu-west-1.amazonaws.com/attini-runner:2.1.0",
            ),
            ("TaskRoleArn", "arn:aws:iam::111122223333:role/runner-task"),
            ("JobRoleArn", "arn:aws:iam::111122223333:role/runner-job"),
            (
                "ExecutionRoleArn",
                "arn:aws:iam::111122223333:role/runner-execution",
            ),
            ("LogGroup", "/attini-runner"),
            ("Region", "eu-west-1"),
            ("Architecture", "ARM64"),
            (
                "QueueUrl",
                "https://sqs.eu-west-1.amazonaws.com/111122223333/runner-jobs",
            ),
        ],
    )
}

fn default_of(setting: config::Setting) -> u64 {
    match setting.kind {
        Kind::Number {
            default: Some(default),
            ..
        } => default,
        _ => panic!("{} has no number default", setting.name),
    }
}

fn container(task: &Value) -> &Value {
    let containers = task["containerDefinitions"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn environment(task: &Value) -> HashMap<String, String> {
    container(task)["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let name = pair["name"].as_str().unwrap().to_string();
            (name, pair["value"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_definition_validates_against_the_request_shape_and_registers() {
    let emulator = Emulator::start_kind("moto").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("task-definition.json");
    std::fs::write(&file, rendered()).unwrap();
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/register_task_definition.py"
        ))
        .arg(&file)
        .envs(emulator.env())
        .output()
        .await
        .expect("python3 with boto3: run ./scripts/test");
    crate::harness::assert_exit(&out, 0);
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stored["revision"], 1, "{stored}");
    assert_eq!(stored["family"], "attini-runner");
    assert_eq!(container(&stored)["stopTimeout"], 120);
    assert_eq!(stored["requiresCompatibilities"][0], "FARGATE");
}

#[test]
fn a_shape_error_is_reported_by_the_validator() {
    // The validator is what the test above leans on; it must say no to a wrong shape.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.json");
    let mut task: Value = serde_json::from_str(&rendered()).unwrap();
    task["containerDefinitions"][0]["stopTimeout"] = Value::from("120");
    std::fs::write(&file, task.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/register_task_definition.py"
        ))
        .arg(&file)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .expect("python3 with boto3: run ./scripts/test");
    crate::harness::assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopTimeout"));
}

#[test]
fn every_variable_is_a_setting_at_its_default() {
    let task: Value = serde_json::from_str(&rendered()).unwrap();
    let env = environment(&task);
    for name in env.keys() {
        assert!(
            config::ALL.iter().any(|setting| setting.name == name),
            "{name} is not a setting the runner reads"
        );
    }
    for setting in config::ALL {
        let value = env.get(setting.name);
        match setting.kind {
            Kind::Number {
                default: Some(default),
                ..
            } => assert_eq!(value, Some(&default.to_string()), "{}", setting.name),
            Kind::Number { default: None, .. } => {
                assert_eq!(value, None, "{} is off by default", setting.name)
            }
            Kind::Text { .. } => {}
        }
    }
    assert_eq!(env["ATTINI_LOG_LEVEL"], "INFO");
    assert_eq!(env["ATTINI_WORK_DIR"], "/work/runner", "on the work volume");
    // The runner accepts them as a whole.
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
    assert_eq!(settings.worker.max_jobs, 5);
}

#[test]
fn the_drain_and_kill_grace_end_before_the_stop_timeout() {
    let task: Value = serde_json::from_str(&rendered()).unwrap();
    let env = environment(&task);
    let stop = container(&task)["stopTimeout"].as_u64().unwrap();
    assert_eq!(stop, 120, "Fargate's longest stop timeout");
    // The runner is told the task's stop timeout, and makes its drain grace from it.
    assert_eq!(env["ATTINI_STOP_TIMEOUT"], stop.to_string());
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
    let drain = settings.worker.drain_grace;
    let kill = settings.engine.kill_grace;
    // After the drain grace the runner ends the jobs (SIGTERM, then SIGKILL after the kill
    // grace) and reports them in the time left.
    let answer = attini_runner::config::ANSWER_TIME;
    assert_eq!(drain + kill + answer, std::time::Duration::from_secs(stop));
}

#[test]
fn the_container_is_locked_down_and_writes_only_to_its_volume() {
    let task: Value = serde_json::from_str(&rendered()).unwrap();
    let container = container(&task);
    assert_eq!(container["readonlyRootFilesystem"], true);
    // No init process: PID 1 would be a dumpable process holding the container's
    // environment, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI included, which any job could read
    // from /proc/1/environ and exchange for the task role. The runner is PID 1 and reaps.
    assert!(
        container["linuxParameters"]["initProcessEnabled"].is_null(),
        "an init process exposes the task role to jobs"
    );
    assert_ne!(
        task["taskRoleArn"], task["executionRoleArn"],
        "separate roles"
    );
    let mount = &container["mountPoints"][0];
    assert_eq!(mount["containerPath"], "/work", "the image's VOLUME");
    assert_eq!(task["volumes"][0]["name"], mount["sourceVolume"]);
    let storage = task["ephemeralStorage"]["sizeInGiB"].as_u64().unwrap();
    // Room for the largest distribution (its zip and its files), the cache, and job output.
    let needed = (2 * default_of(config::DISTRIBUTION_MAX_BYTES)
        + default_of(config::DISTRIBUTION_CACHE_BYTES))
        >> 30;
    assert!(
        storage >= 21 && storage >= needed * 2,
        "{storage} GiB for {needed} GiB"
    );
    let logs = &container["logConfiguration"];
    assert_eq!(logs["logDriver"], "awslogs");
    assert_eq!(logs["options"]["mode"], "non-blocking");
    assert!(logs["options"]["awslogs-stream-prefix"].is_string());
    assert_eq!(task["networkMode"], "awsvpc");
    assert!(task["runtimePlatform"]["cpuArchitecture"].is_string());
}
