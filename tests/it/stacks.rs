//! The CloudFormation stacks users deploy (`cloudformation/`): both pass cfn-lint and checkov
//! (skips are written next to the resource, with the reason); `runner-service.yaml` is created
//! in moto's CloudFormation, the runner is started with the stack's outputs, and the stack's
//! own example state machine runs a job through it to SUCCEEDED. Its container definition
//! carries the same settings as `task-definition.json`.

use std::collections::HashMap;
use std::process::Command;

use serde_json::{Value, json};

use crate::emulator::Emulator;
use crate::harness::{assert_exit, describe};
use crate::world::*;

const STACKS: &[&str] = &[
    "cloudformation/runner-service.yaml",
    "cloudformation/attini-runner.yaml",
];

fn lint(tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}; ./scripts/test installs it"));
    assert!(out.status.success(), "{tool} {args:?}: {}", describe(&out));
}

#[test]
fn the_stacks_pass_cfn_lint() {
    lint("cfn-lint", STACKS);
}

#[test]
fn the_stacks_pass_checkov() {
    for stack in STACKS {
        // --skip-download: no network here; the checks ship with checkov.
        lint(
            "checkov",
            &[
                "--quiet",
                "--compact",
                "--skip-download",
                "--framework",
                "cloudformation",
                "-f",
                stack,
            ],
        );
    }
}

/// Creates `template` on the emulator with `parameters`; returns its outputs (plus
/// `_resources` and `_task_definition`, see `tests/tools/create_stack.py`).
async fn create_stack(
    emulator: &Emulator,
    template: &str,
    name: &str,
    parameters: &[&str],
) -> Value {
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/create_stack.py"
        ))
        .arg(template)
        .arg(name)
        .args(parameters)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .envs(emulator.env())
        .output()
        .await
        .expect("python3 with boto3: run ./scripts/test");
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn env_of(container: &Value) -> HashMap<String, String> {
    container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let value = match &pair["value"] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (pair["name"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_stack_runs_its_example_state_machine_through_the_runner() {
    let world = World::on(Emulator::start_kind("moto").await).await;
    let stack = world.unique("runner");
    let outputs = create_stack(
        &world.emulator,
        "cloudformation/runner-service.yaml",
        &stack,
        &[
            "Image=attini-runner:test",
            "VpcId=VPC",
            "Subnets=SUBNET",
            "DistributionBucket=artifacts",
        ],
    )
    .await;
    for resource in [
        "Cluster",
        "Service",
        "TaskDefinition",
        "JobQueue",
        "DeadLetterQueue",
        "TaskRole",
    ] {
        assert!(
            outputs["_resources"][resource].is_string(),
            "{resource}: {outputs}"
        );
    }
    let queue = outputs["QueueUrl"].as_str().unwrap().to_string();
    assert!(queue.ends_with(&format!("{stack}-jobs.fifo")), "{queue}");

    // The stack's container definition and task-definition.json set the same settings.
    let container = &outputs["_task_definition"]["containerDefinitions"][0];
    let mut in_stack = env_of(container);
    assert_eq!(in_stack.remove("ATTINI_QUEUE_URL"), Some(queue.clone()));
    let file: Value = serde_json::from_str(include_str!("../../task-definition.json")).unwrap();
    let mut in_file = env_of(&file["containerDefinitions"][0]);
    in_file.remove("ATTINI_QUEUE_URL");
    assert_eq!(in_stack, in_file);
    for key in [
        "stopTimeout",
        "healthCheck",
        "readonlyRootFilesystem",
        "user",
        "mountPoints",
    ] {
        assert_eq!(
            container[key], file["containerDefinitions"][0][key],
            "{key}"
        );
    }

    let log = std::fs::File::create(world.tmp.path().join("runner.log")).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[], log);
    let machine = outputs["StateMachineArn"].as_str().unwrap();
    let execution = world
        .start(machine, "example-1", &json!({"from": "test"}))
        .await;
    let finished = world.finished(&execution).await;
    let log = std::fs::read_to_string(world.tmp.path().join("runner.log")).unwrap();
    assert_eq!(
        finished.status, "SUCCEEDED",
        "{finished:?}\nrunner log:\n{log}"
    );
    let said = finished.output.unwrap()["result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(said.starts_with("hello from attini-runner on "), "{said}");

    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
}

#[test]
fn the_attini_role_allows_every_call_of_attini_mode_lease_and_heartbeat_included() {
    let template = include_str!("../../cloudformation/attini-runner.yaml");
    let calls = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "states:SendTaskHeartbeat",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "s3:GetObject",
        "s3:PutObject",
    ];
    for call in calls {
        assert!(
            template.contains(call),
            "attini-runner.yaml does not allow {call}"
        );
    }
    // CONTRACT 7.1: a task definition, not an image, and no command of our own (the
    // dispatcher sets it).
    assert!(template.contains("TaskDefinitionArn: !Ref RunnerTaskDefinition"));
    assert!(
        !template.contains("Command: [attini-runner"),
        "the dispatcher sets the command"
    );
    assert!(template.contains("Type: Attini::Deploy::Runner"));
}
