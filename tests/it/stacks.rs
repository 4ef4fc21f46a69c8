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
pub async fn create_stack(
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
        // moto leaves `null` where `!If [.., .., !Ref AWS::NoValue]` drops a list entry
        // (CloudFormation removes it).
        .filter(|pair| !pair.is_null())
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
            "ArtifactStoreBucket=reports",
            "ToolCacheSeed=s3://caches/tools/npm.zip",
            "ExtraSecurityGroups=sg-0123456789abcdef0",
            "Architecture=ARM64",
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
    assert_eq!(
        in_stack.remove("ATTINI_ARTIFACT_STORE").as_deref(),
        Some("reports"),
        "ArtifactStoreBucket names the jobs' artifact store"
    );
    assert_eq!(
        in_stack.remove("ATTINI_TOOL_CACHE_SEED").as_deref(),
        Some("s3://caches/tools/npm.zip"),
        "ToolCacheSeed names the tool caches' seed"
    );
    // ... and the runner may read that one object.
    let runner_policy = &outputs["_role_policies"]["TaskRole"]["runner"];
    let seed_read: Vec<&Value> = runner_policy["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{runner_policy}"))
        .iter()
        .filter(|s| s["Sid"] == "ReadToolCacheSeed")
        .collect();
    assert_eq!(
        seed_read,
        [
            &json!({"Sid": "ReadToolCacheSeed", "Effect": "Allow", "Action": ["s3:GetObject"],
                 "Resource": "arn:aws:s3:::caches/tools/npm.zip"})
        ],
        "{runner_policy}"
    );
    let lock_table = in_stack.remove("ATTINI_LOCK_TABLE").unwrap();
    assert!(lock_table.contains("LockTable"), "{lock_table}");
    let job_role = in_stack.remove("ATTINI_JOB_ROLE_ARN").unwrap();
    assert_eq!(outputs["JobRoleArn"].as_str(), Some(job_role.as_str()));
    let file: Value = serde_json::from_str(include_str!("../../task-definition.json")).unwrap();
    let mut in_file = env_of(&file["containerDefinitions"][0]);
    in_file.remove("ATTINI_QUEUE_URL");
    in_file.remove("ATTINI_JOB_ROLE_ARN");
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
    // The job runs as the stack's job role, as on ECS.
    let emf = [
        ("ATTINI_METRICS", "emf"),
        ("ATTINI_METRICS_INTERVAL", "1"),
        ("ATTINI_JOB_ROLE_ARN", job_role.as_str()),
    ];
    let mut runner = serve_binary_to(&world, &queue, &emf, log);
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

    // Every alarm on the runner's own figures names a metric the runner writes, in its
    // namespace, with its dimension and the stack's queue as the value.
    let queue_name = queue.rsplit('/').next().unwrap();
    let documents = emf_documents_after_a_job(&world).await;
    let alarms = runner_metric_alarms(include_str!("../../cloudformation/runner-service.yaml"));
    assert!(alarms.len() >= 3, "{alarms:?}");
    for metric in alarms {
        let written = documents.iter().any(|doc| {
            let directive = &doc["_aws"]["CloudWatchMetrics"][0];
            directive["Namespace"] == attini_runner::metrics::emf::NAMESPACE
                && directive["Dimensions"] == json!([["Queue"]])
                && doc["Queue"] == queue_name
                && directive["Metrics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["Name"] == metric.as_str())
        });
        assert!(
            written,
            "the alarm's metric {metric} is not one the runner writes"
        );
    }

    // Every runner metric of the dashboard is one the runner writes, in its namespace, with
    // the same dimensions and the stack's queue as the value.
    let dashboard = dashboard_body(
        include_str!("../../cloudformation/runner-service.yaml"),
        queue_name,
    );
    let mut seen = 0;
    for (namespace, name, dimensions) in dashboard_metrics(&dashboard) {
        match namespace.as_str() {
            "AttiniRunner" => {
                assert_eq!(dimensions, [("Queue".to_string(), queue_name.to_string())]);
                let written = documents.iter().any(|doc| {
                    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
                    directive["Dimensions"] == json!([["Queue"]])
                        && directive["Metrics"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|m| m["Name"] == name.as_str())
                });
                assert!(
                    written,
                    "the dashboard's metric {name} is not one the runner writes"
                );
                seen += 1;
            }
            "AWS/SQS" => assert_eq!(name, "ApproximateAgeOfOldestMessage"),
            "ECS/ContainerInsights" => assert_eq!(name, "RunningTaskCount"),
            other => panic!("the dashboard reads {other}/{name}"),
        }
    }
    assert!(seen >= 10, "{dashboard}");
    // The AWS errors widget searches the dimension set the runner writes them with.
    let search = dashboard.to_string();
    let figures = attini_runner::metrics::Figures::new();
    figures.aws_error(attini_runner::metrics::AwsErrorLabels {
        service: "sqs",
        operation: "ReceiveMessage",
        class: "transient",
    });
    let docs = attini_runner::metrics::emf::EmfReader::default().read(&figures, queue_name, 1);
    let by_class = docs
        .iter()
        .find(|d| d["Class"] == "transient")
        .expect("an AwsErrors document by class");
    let mut keys: Vec<String> = by_class["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    keys.sort();
    let wanted = format!(
        "{{AttiniRunner,{}}} MetricName=\\\"AwsErrors\\\"",
        keys.join(",")
    );
    assert!(search.contains(&wanted), "{wanted} not in {search}");

    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
}

#[test]
fn the_dashboard_picture_in_the_readme_is_the_stacks() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .args([
            &format!("{root}/scripts/render_dashboard.py"),
            &format!("{root}/cloudformation/runner-service.yaml"),
        ])
        .output()
        .expect("python3");
    assert_exit(&out, 0);
    let drawn = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(format!("{root}/docs/dashboard.svg")).unwrap();
    assert_eq!(
        drawn, committed,
        "docs/dashboard.svg is not the stack's dashboard: run scripts/render_dashboard.py cloudformation/runner-service.yaml docs/dashboard.svg"
    );
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains("](docs/dashboard.svg)"),
        "the README shows the picture"
    );
}

/// The service stack's dashboard body (its `!Sub` text, the queue's name and placeholders
/// put in), as JSON.
fn dashboard_body(template: &str, queue_name: &str) -> Value {
    let lines: Vec<&str> = template.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "DashboardBody: !Sub |")
        .expect("the dashboard");
    let indent = lines[at].len() - lines[at].trim_start().len();
    let body: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .copied()
        .collect();
    let text = body
        .join("\n")
        .replace("${JobQueue.QueueName}", queue_name)
        .replace("${AWS::Region}", "us-east-1")
        .replace("${Cluster}", "cluster")
        .replace("${Service.Name}", "service");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A dashboard metric: namespace, name and dimension pairs.
type DashboardMetric = (String, String, Vec<(String, String)>);

/// Each metric of the dashboard's widgets.
fn dashboard_metrics(dashboard: &Value) -> Vec<DashboardMetric> {
    let mut metrics = Vec::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for metric in widget["properties"]["metrics"].as_array().unwrap() {
            let parts: Vec<&str> = metric
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if parts.len() < 2 {
                continue; // an expression
            }
            let dimensions = parts[2..]
                .chunks(2)
                .map(|pair| (pair[0].to_string(), pair[1].to_string()))
                .collect();
            metrics.push((parts[0].to_string(), parts[1].to_string(), dimensions));
        }
    }
    metrics
}

/// The EMF documents in the runner's log once one holds the finished job.
async fn emf_documents_after_a_job(world: &World) -> Vec<Value> {
    for _ in 0..300 {
        let log = std::fs::read_to_string(world.tmp.path().join("runner.log")).unwrap();
        let documents: Vec<Value> = log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|doc| doc.get("_aws").is_some())
            .collect();
        if documents.iter().any(|doc| doc["JobsSucceeded"] == 1) {
            return documents;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no EMF document counted the job within 30 s");
}

/// The metric names of the template's alarms in the runner's namespace (`Namespace:
/// AttiniRunner`, then `MetricName:` and the `Queue` dimension on the lines after it).
fn runner_metric_alarms(template: &str) -> Vec<String> {
    let lines: Vec<&str> = template.lines().collect();
    let mut names = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "Namespace: AttiniRunner" {
            continue;
        }
        let name = lines[i + 1]
            .trim()
            .strip_prefix("MetricName: ")
            .expect("MetricName after the namespace");
        assert_eq!(
            lines[i + 2].trim(),
            "Dimensions: [{ Name: Queue, Value: !GetAtt JobQueue.QueueName }]",
            "{name}"
        );
        names.push(name.to_string());
    }
    names
}

#[test]
fn the_service_keeps_its_scaled_count_on_updates() {
    let template = include_str!("../../cloudformation/runner-service.yaml");
    let service = &template[template.find("\n  Service:\n").unwrap()..];
    let service = &service[..service.find("\n\n").unwrap()];
    assert!(
        !service
            .lines()
            .any(|line| line.trim().starts_with("DesiredCount:")),
        "a DesiredCount resets the scaled count on every update:\n{service}"
    );
    assert!(template.contains("MinCapacity: !Ref MinTasks"));
    assert!(
        template.contains("Threshold: !Ref MinTasks"),
        "the tasks-below-minimum alarm"
    );
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
