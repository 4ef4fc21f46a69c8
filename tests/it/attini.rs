//! Attini mode end to end with the real binary: the dispatcher's message shape sent by a real
//! state machine, the resource-state and deploy-data tables, an ECS metadata endpoint served by
//! the test, startup commands, the poll filters, the S3 job log and the idle TTL.

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use axum::{Json, Router, routing::get};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::world::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_attini-runner");
pub const DIST_ID: &str = "5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e";
pub const PREFIX: &str = "dev/demo/5ed6cd45-636d-4dd9-b7ed-a90580fd0b7e/distribution-origin";
pub const HASH: i64 = -1102536878;

/// One Attini runner's world: queue, tables, artifact store, ECS metadata.
pub struct Attini {
    pub world: World,
    pub queue: String,
    pub resource_table: String,
    pub deploy_table: String,
    pub bucket: String,
    pub task_arn: String,
    pub metadata: String,
}

impl Attini {
    pub async fn new() -> Attini {
        let world = World::new().await;
        let queue = world.fifo_queue("AttiniRunnerQueueTest").await;
        world
            .clients
            .sqs
            .set_queue_attributes()
            .queue_url(&queue)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "2",
            )
            .send()
            .await
            .unwrap();
        let resource_table = world
            .table(
                "AttiniResourceStatesV1",
                "resourceType",
                "name",
                ScalarAttributeType::S,
            )
            .await;
        let deploy_table = world
            .table(
                "AttiniDeployDataV1",
                "deploymentName",
                "deploymentTime",
                ScalarAttributeType::N,
            )
            .await;
        let bucket = world.bucket("attini-artifact-store-us-east-1").await;
        let task_arn =
            "arn:aws:ecs:us-east-1:000000000000:task/attini-default/0123456789abcdef".to_string();
        let metadata = serve_metadata(&task_arn).await;
        Attini {
            world,
            queue,
            resource_table,
            deploy_table,
            bucket,
            task_arn,
            metadata,
        }
    }

    /// A distribution with one file, where Attini jobs look for it.
    pub async fn small_distribution(&self) {
        let zip = zip_bytes(&[("x.txt", "x", 0o644)]);
        self.world
            .put(&self.bucket, &format!("{PREFIX}/demo.zip"), zip)
            .await;
    }

    /// The runner item owned by this task, the small distribution, and one current execution
    /// (`exec-1`) of a one-step plan whose step `step` runs `commands`; returns the execution.
    pub async fn one_step(&self, step: &str, commands: Value) -> String {
        self.runner_item(&self.task_arn, vec![]).await;
        self.small_distribution().await;
        let machine = self.machine("plan", step, commands, HASH).await;
        let execution = self.world.start(&machine, "exec-1", &json!({})).await;
        self.current(&[&execution]).await;
        execution
    }

    /// The runner item, owned by `task_id`, with `extra` attributes.
    pub async fn runner_item(&self, task_id: &str, extra: Vec<(&str, AttributeValue)>) {
        let mut item: HashMap<String, AttributeValue> = [
            ("resourceType", AttributeValue::S("Runner".into())),
            (
                "name",
                AttributeValue::S("dev-demo-deployment-plan-Runner".into()),
            ),
            ("taskId", AttributeValue::S(task_id.into())),
            ("started", AttributeValue::Bool(false)),
            ("environment", AttributeValue::S("dev".into())),
            ("distributionName", AttributeValue::S("demo".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            item.insert(k.to_string(), v);
        }
        self.world
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.resource_table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }

    pub async fn item(&self) -> HashMap<String, AttributeValue> {
        self.world
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.resource_table)
            .key("resourceType", AttributeValue::S("Runner".into()))
            .key(
                "name",
                AttributeValue::S("dev-demo-deployment-plan-Runner".into()),
            )
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    }

    /// Makes `executions` the current deployment of dev-demo.
    pub async fn current(&self, executions: &[&str]) {
        let arns = executions
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("e{i}"), AttributeValue::S(a.to_string())))
            .collect();
        self.world
            .clients
            .dynamodb
            .put_item()
            .table_name(&self.deploy_table)
            .item("deploymentName", AttributeValue::S("dev-demo".into()))
            .item("deploymentTime", AttributeValue::N("0".into()))
            .item("executionArns", AttributeValue::M(arns))
            .send()
            .await
            .unwrap();
    }

    /// A deployment plan step as the dispatcher sends it, in a machine named `name`.
    pub async fn machine(&self, name: &str, step: &str, commands: Value, hash: i64) -> String {
        self.machine_for(name, step, commands, hash, "dev/demo/demo.zip#v1")
            .await
    }

    /// As [`Attini::machine`], for the distribution version `object_identifier`.
    pub async fn machine_for(
        &self,
        name: &str,
        step: &str,
        commands: Value,
        hash: i64,
        object_identifier: &str,
    ) -> String {
        let state = self.dispatcher_state(step, commands, hash, object_identifier);
        let definition = json!({"StartAt": step, "States": {step: state}});
        self.world.state_machine(name, &definition).await
    }

    /// The Task state of deployment plan step `step` as the Attini dispatcher's message makes
    /// it: its body (CONTRACT 5.2), and group and deduplication id `md5(executionArn +
    /// stepName)` (CONTRACT 5.1), the same for every attempt.
    pub fn dispatcher_state(
        &self,
        step: &str,
        commands: Value,
        hash: i64,
        object_identifier: &str,
    ) -> Value {
        let body = json!({
            "output": {"Earlier": {"Value": "v"}},
            "Properties": {"Commands": commands, "Runner": "Runner", "Environment": {"STAGE": "dev", "QUOTED": "it's"}},
            "deploymentPlanExecutionMetadata": {
                "retryCounter.$": "$$.State.RetryCount", "sfnToken.$": "$$.Task.Token", "stepName.$": "$$.State.Name",
                "executionArn.$": "$$.Execution.Id", "executionStartTime.$": "$$.Execution.StartTime"
            },
            "deploymentOriginData": {
                "distributionName": "demo", "deploymentTime": 1685614500000_i64,
                "deploymentSource": {"deploymentSourcePrefix": PREFIX, "deploymentSourceBucket": self.bucket},
                "environment": "dev", "distributionId": DIST_ID, "deploymentName": "dev-demo",
                "objectIdentifier": object_identifier, "stackName": "dev-demo-deployment-plan",
                "distributionTags": {}, "samPackaged": false
            },
            "dependencies": {}, "customData.$": "$", "stackParameters": {"BootstrapVersion": "15"},
            "taskConfigHashCode": hash
        });
        let id = "States.Hash(States.Format('{}{}', $$.Execution.Id, $$.State.Name), 'MD5')";
        json!({
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": self.queue, "MessageGroupId.$": id,
                           "MessageDeduplicationId.$": id, "MessageBody": body},
            "ResultPath": format!("$.output.{step}"), "End": true})
    }

    /// A task token of a step that "started" the runner, and the execution that waits for it.
    pub async fn start_token(&self) -> (String, String) {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let queue = self.world.fifo_queue(&format!("starts{n}")).await;
        let machine = self
            .world
            .state_machine(&format!("starter{n}"), &native_machine(&queue, json!({})))
            .await;
        let execution = self.world.start(&machine, "start", &json!({})).await;
        let message = self
            .world
            .clients
            .sqs
            .receive_message()
            .queue_url(&queue)
            .wait_time_seconds(10)
            .send()
            .await
            .unwrap();
        let body: Value =
            serde_json::from_str(message.messages.unwrap()[0].body.as_ref().unwrap()).unwrap();
        (body["taskToken"].as_str().unwrap().to_string(), execution)
    }

    /// Runs the runner binary to its exit (idle TTL `ttl` seconds) with `hash`.
    pub async fn run_runner(&self, token: &str, required: &str, hash: i64, ttl: u64) -> Output {
        self.run_runner_with(token, required, hash, ttl, &[]).await
    }

    /// As [`Attini::run_runner`], with more variables.
    pub async fn run_runner_with(
        &self,
        token: &str,
        required: &str,
        hash: i64,
        ttl: u64,
        extra: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.command(token, required, hash, ttl, extra);
        tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("the runner did not exit within two minutes")
            .unwrap()
    }

    /// Runs the runner to its exit (idle TTL 2 s) with its AWS calls sent to `endpoint` (a fault
    /// proxy); asserts that it exits 0.
    pub async fn run_through(&self, endpoint: &str) -> Output {
        let through = [("AWS_ENDPOINT_URL", endpoint)];
        let out = self
            .run_runner_with("unused-start-token", "2.0.2", HASH, 2, &through)
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out
    }

    /// The runner's command line and environment as the dispatcher starts it.
    pub fn command(
        &self,
        token: &str,
        required: &str,
        hash: i64,
        ttl: u64,
        extra: &[(&str, &str)],
    ) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args([token, required])
            .envs(self.world.emulator.env())
            .env("ATTINI_QUEUE_URL", &self.queue)
            .env("ATTINI_DEPLOY_DATA_TABLE", &self.deploy_table)
            .env("ATTINI_RESOURCE_STATE_TABLE", &self.resource_table)
            .env("ATTINI_CONFIGURATION_HASH", hash.to_string())
            .env(
                "ATTINI_RUNNER_RESOURCE_NAME",
                "dev-demo-deployment-plan-Runner",
            )
            .env("ATTINI_DISABLE_ANSI_COLOR", "true")
            .env("ATTINI_AWS_ACCOUNT", "000000000000")
            .env("ATTINI_AWS_REGION", "us-east-1")
            .env("ATTINI_ARTIFACT_STORE", &self.bucket)
            .env("ATTINI_RUNNER_IDLE_TTL", ttl.to_string())
            .env("ECS_CONTAINER_METADATA_URI_V4", &self.metadata)
            .env("ATTINI_WORK_DIR", self.world.tmp.path().join("work"))
            .env("ATTINI_JOB_TIMEOUT", TEST_JOB_TIMEOUT.as_secs().to_string())
            .env(
                "ATTINI_RECEIVE_WAIT",
                TEST_RECEIVE_WAIT.as_secs().to_string(),
            )
            // Tests run side by side: any free port for the ops server.
            .env("ATTINI_OPS_ADDR", "127.0.0.1:0")
            .current_dir(self.world.tmp.path())
            .envs(extra.iter().copied())
            .kill_on_drop(true);
        cmd
    }
}

/// Serves ECS container metadata v4 for `task_arn` on loopback; returns its URL.
pub async fn serve_metadata(task_arn: &str) -> String {
    serve_metadata_with(task_arn, "RUNNING").await
}

/// As [`serve_metadata`], with the task's `DesiredStatus`.
pub async fn serve_metadata_with(task_arn: &str, desired: &str) -> String {
    let body = json!({
        "DockerId": "abc", "Name": "attini-default-container", "DesiredStatus": desired, "KnownStatus": "RUNNING",
        "Labels": {"com.amazonaws.ecs.task-arn": task_arn, "com.amazonaws.ecs.cluster": "attini-default"},
        "LogDriver": "awslogs",
        "LogOptions": {"awslogs-group": "/attini/runner/default", "awslogs-region": "us-east-1", "awslogs-stream": "logs/c/abc"}
    });
    let app = Router::new().route("/v4/container", get(move || async move { Json(body) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v4/container", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attini_step_runs_with_its_distribution_log_and_startup_commands() {
    let a = Attini::new().await;
    let marker = a.world.tmp.path().join("startup-ran");
    a.runner_item(
        &a.task_arn,
        vec![(
            "startupCommands",
            AttributeValue::L(vec![
                AttributeValue::S("echo installing tools".into()),
                // A relative path: the startup commands run in the runner's working directory.
                AttributeValue::S(
                    "echo \"$ATTINI_ENVIRONMENT_NAME/$ATTINI_DISTRIBUTION_NAME\" > startup-ran"
                        .into(),
                ),
            ]),
        )],
    )
    .await;
    let script = "#!/bin/bash\necho \"deploying $ATTINI_DISTRIBUTION_NAME to $STAGE ($QUOTED)\"\necho second line\n\
                  printf '{\"step\":\"%s\",\"earlier\":%s}' \"$ATTINI_STEP_NAME\" \"$(grep -o '\"Earlier\":{[^}]*}' \"$ATTINI_INPUT\" | cut -d: -f2-)\" > \"$ATTINI_OUTPUT\"\n";
    a.world
        .put(
            &a.bucket,
            &format!("{PREFIX}/demo.zip"),
            zip_bytes(&[("deploy.sh", script, 0o755)]),
        )
        .await;
    let machine = a
        .machine("plan", "RunTests", json!(["./deploy.sh"]), HASH)
        .await;
    let execution = a
        .world
        .start(&machine, "exec-1", &json!({"answer": 42}))
        .await;
    a.current(&[&execution]).await;

    let out = a.run_runner("start-token-unused", "2.0.2", HASH, 2).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = a.world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}\n{}", stderr(&out));
    assert_eq!(
        done.output.unwrap()["output"]["RunTests"],
        json!({"step": "RunTests", "earlier": {"Value": "v"}})
    );

    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "dev/demo\n");
    assert_eq!(a.item().await["started"], AttributeValue::Bool(true));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[startup] installing tools"), "{stdout}");
    // Each job line is tagged with its step and task id (`attini-runner logs` finds it so).
    let tagged = stdout.lines().any(|l| {
        l.strip_prefix("[RunTests #")
            .and_then(|rest| rest.split_once("] "))
            .is_some_and(|(id, line)| {
                id.len() == 12
                    && id.chars().all(|c| c.is_ascii_hexdigit())
                    && line == "deploying demo to dev (it's)"
            })
    });
    assert!(tagged, "{stdout}");

    let key = format!("attini/deployment/logs/runner/dev/demo/{DIST_ID}/RunTests/exec-1");
    let log = a
        .world
        .get(&a.bucket, &key)
        .await
        .expect("the job log object");
    let lines: Vec<Value> = String::from_utf8(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let data: Vec<&str> = lines.iter().map(|l| l["data"].as_str().unwrap()).collect();
    assert_eq!(data, ["deploying demo to dev (it's)", "second line"]);
    assert!(
        lines
            .iter()
            .all(|l| l["timestamp"].as_u64().unwrap() > 1_600_000_000_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_reports_script_execution_error_with_the_log_link() {
    let a = Attini::new().await;
    let execution = a
        .one_step("Migrate", json!(["echo migrating", "exit 5"]))
        .await;
    let out = a.run_runner("unused-start-token", "2.0.2", HASH, 2).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = a.world.finished(&execution).await;
    assert_eq!(done.error.as_deref(), Some("ScriptExecutionError"));
    assert_eq!(
        done.cause.as_deref(),
        Some(
            "Script exited with code 5, see complete logs at: https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/%252Fattini%252Frunner%252Fdefault/log-events/logs%252Fc%252Fabc\nLast 1 lines of output:\nmigrating"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_executions_and_missing_distributions_are_answered() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    let machine = a.machine("plan", "Step", json!(["true"]), HASH).await;
    let stale = a.world.start(&machine, "old", &json!({})).await;
    let current = a.world.start(&machine, "new", &json!({})).await;
    a.current(&[&current]).await;
    // No distribution object in the bucket.
    let out = a.run_runner("unused-start-token", "2.0.2", HASH, 2).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let old = a.world.finished(&stale).await;
    assert_eq!(old.error.as_deref(), Some("Runner.StaleExecution"));
    assert!(
        old.cause
            .unwrap()
            .contains("is no longer the current deployment of dev-demo")
    );
    let new = a.world.finished(&current).await;
    assert_eq!(new.error.as_deref(), Some("RuntimeError"));
    let cause = new.cause.unwrap();
    assert!(
        cause.contains(&format!(
            "s3://{}/{PREFIX}/demo.zip does not exist",
            a.bucket
        )),
        "{cause}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_configuration_hash_is_left_for_the_runner_started_for_it() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let machine = a
        .machine(
            "plan",
            "Step",
            json!(["echo '\"new config\"' > $ATTINI_OUTPUT"]),
            222,
        )
        .await;
    let execution = a.world.start(&machine, "exec-1", &json!({})).await;
    a.current(&[&execution]).await;
    let old = a.run_runner("unused-start-token", "2.0.2", 111, 1).await;
    assert_eq!(old.status.code(), Some(0));
    assert!(
        stderr(&old).contains("configuration hash 222 is not this runner's 111"),
        "{}",
        stderr(&old)
    );
    assert_eq!(a.world.status(&execution).await, "RUNNING");
    let new = a.run_runner("unused-start-token", "2.0.2", 222, 2).await;
    assert_eq!(new.status.code(), Some(0));
    let done = a.world.finished(&execution).await;
    assert_eq!(done.output.unwrap()["output"]["Step"], json!("new config"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_whose_task_was_replaced_exits_and_leaves_the_job() {
    let a = Attini::new().await;
    a.runner_item(
        "arn:aws:ecs:us-east-1:000000000000:task/attini-default/other",
        vec![],
    )
    .await;
    let machine = a.machine("plan", "Step", json!(["true"]), HASH).await;
    let execution = a.world.start(&machine, "exec-1", &json!({})).await;
    a.current(&[&execution]).await;
    let out = a.run_runner("unused-start-token", "2.0.2", HASH, 60).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("another runner took over"),
        "{}",
        stderr(&out)
    );
    // Not marked started (the item names another task), job not run, message still queued.
    assert_eq!(a.item().await["started"], AttributeValue::Bool(false));
    assert_eq!(a.world.status(&execution).await, "RUNNING");
    assert_eq!(a.world.messages_left(&a.queue).await, 1);
}

/// The runner item is read again once the last read naming this task is older than the
/// bound (OWNER_FRESH): a takeover while the runner serves is seen then. The test waits out
/// that bound, the one thing it checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_while_serving_is_seen_once_the_ownership_bound_has_passed() {
    let a = Attini::new().await;
    let first = a.one_step("Step", json!(["true"])).await;
    let mut runner = a
        .command("unused-start-token", "2.0.2", HASH, 60, &[])
        .spawn()
        .unwrap();
    assert_eq!(a.world.finished(&first).await.status, "SUCCEEDED");
    a.runner_item(
        "arn:aws:ecs:us-east-1:000000000000:task/attini-default/other",
        vec![],
    )
    .await;
    tokio::time::sleep(attini_runner::modes::attini::ownership::OWNER_FRESH).await;
    let machine = a.machine("plan2", "Step", json!(["true"]), HASH).await;
    let second = a.world.start(&machine, "exec-2", &json!({})).await;
    a.current(&[&first, &second]).await;
    let status = tokio::time::timeout(Duration::from_secs(60), runner.wait())
        .await
        .expect("the runner did not exit after the takeover")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(a.world.status(&second).await, "RUNNING", "not run");
    assert_eq!(
        a.world.messages_left(&a.queue).await,
        1,
        "left in the queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failures_are_reported_to_the_start_token() {
    let a = Attini::new().await;
    a.runner_item(
        &a.task_arn,
        vec![(
            "startupCommands",
            AttributeValue::L(vec![
                AttributeValue::S("echo trying".into()),
                AttributeValue::S("exit 4".into()),
            ]),
        )],
    )
    .await;
    let (token, starter) = a.start_token().await;
    let out = a.run_runner(&token, "2.0.2", HASH, 60).await;
    assert_eq!(out.status.code(), Some(1));
    let done = a.world.finished(&starter).await;
    assert_eq!(done.error.as_deref(), Some("Startup tasks failed"));
    let cause = done.cause.unwrap();
    assert!(cause.starts_with("Startup script finished with exit code = 4. See complete logs at: https://us-east-1.console.aws.amazon.com/"), "{cause}");

    let (token, starter) = a.start_token().await;
    let out = a.run_runner(&token, "9.9.9", HASH, 60).await;
    assert_eq!(out.status.code(), Some(1));
    let done = a.world.finished(&starter).await;
    assert_eq!(done.error.as_deref(), Some("Startup tasks failed"));
    assert_eq!(
        done.cause.as_deref(),
        Some(format!("The current runner version is older then the required version. Required version: 9.9.9, current version: {}", attini_runner::VERSION).as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_runner_exits_after_its_ttl() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    let out = a.run_runner("unused-start-token", "2.0.2", HASH, 1).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no jobs for the idle TTL"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attini_text_output_and_job_timeout() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let text = a
        .machine(
            "text",
            "Text",
            json!(["echo \"s3://bucket/template.yaml\" > ${ATTINI_OUTPUT}"]),
            HASH,
        )
        .await;
    let slow = a
        .machine("slow", "Slow", json!(["echo started", "sleep 600"]), HASH)
        .await;
    let text_run = a.world.start(&text, "t", &json!({})).await;
    let slow_run = a.world.start(&slow, "s", &json!({})).await;
    a.current(&[&text_run, &slow_run]).await;
    let out = a
        .run_runner_with(
            "unused-start-token",
            "2.0.2",
            HASH,
            2,
            &[("ATTINI_JOB_TIMEOUT", "1")],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = a.world.finished(&text_run).await;
    assert_eq!(
        done.output.unwrap()["output"]["Text"],
        json!({"result": "s3://bucket/template.yaml"})
    );
    let done = a.world.finished(&slow_run).await;
    assert_eq!(done.error.as_deref(), Some("ScriptExecutionError"));
    let cause = done.cause.unwrap();
    assert!(
        cause.starts_with("Script timed out after 1 seconds, see complete logs at: https://"),
        "{cause}"
    );
    assert!(
        cause.ends_with("Last 1 lines of output:\nstarted"),
        "{cause}"
    );
}

/// Calls the EC2 query API of the emulator (unsigned; emulators do not check signatures).
async fn ec2(world: &World, params: &[(&str, &str)]) -> String {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    // The values here are plain ASCII words: no form encoding needed.
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    reqwest::Client::new()
        .post(&world.emulator.endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn instance_state(world: &World, id: &str) -> String {
    let xml = ec2(
        world,
        &[("Action", "DescribeInstances"), ("InstanceId.1", id)],
    )
    .await;
    let state = xml.split("<instanceState>").nth(1).expect("instanceState");
    state
        .split("<name>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_ec2_mode_the_runner_terminates_its_host_unless_disabled() {
    let a = Attini::new().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let xml = ec2(
            &a.world,
            &[
                ("Action", "RunInstances"),
                ("ImageId", "ami-12345678"),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("InstanceType", "t3.micro"),
            ],
        )
        .await;
        ids.push(
            xml.split("<instanceId>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    a.runner_item(&a.task_arn, vec![]).await;
    let out = a
        .run_runner_with(
            "unused-start-token",
            "2.0.2",
            HASH,
            1,
            &[("ATTINI_EC2_INSTANCE_ID", &ids[0])],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        ["shutting-down", "terminated"].contains(&instance_state(&a.world, &ids[0]).await.as_str()),
        "{}",
        stderr(&out)
    );

    a.runner_item(
        &a.task_arn,
        vec![("shutdownHookDisabled", AttributeValue::Bool(true))],
    )
    .await;
    let out = a
        .run_runner_with(
            "unused-start-token",
            "2.0.2",
            HASH,
            1,
            &[("ATTINI_EC2_INSTANCE_ID", &ids[1])],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(instance_state(&a.world, &ids[1]).await, "running");
}

/// Attini mode with `ATTINI_JOB_ROLE_ARN`: a step's commands run as the job role (a session
/// named after the step and the execution), without the runner's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attini_step_runs_as_the_job_role() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let probe = "python3 -c 'import boto3, json, os; e = os.environ.get; print(json.dumps({\"arn\": boto3.client(\"sts\").get_caller_identity()[\"Arn\"], \"runner_key\": e(\"AWS_ACCESS_KEY_ID\"), \"queue\": e(\"ATTINI_QUEUE_URL\"), \"table\": e(\"ATTINI_RESOURCE_STATE_TABLE\"), \"region\": e(\"ATTINI_AWS_REGION\")}))' > \"$ATTINI_OUTPUT\"";
    let machine = a.machine("roles", "Deploy", json!([probe]), HASH).await;
    let execution = a.world.start(&machine, "exec-role", &json!({})).await;
    a.current(&[&execution]).await;
    let role = "arn:aws:iam::000000000000:role/attini-steps";
    let out = a
        .run_runner_with(
            "start-token-unused",
            "2.0.2",
            HASH,
            2,
            &[("ATTINI_JOB_ROLE_ARN", role)],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = a.world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}\n{}", stderr(&out));
    let output = &done.output.unwrap()["output"]["Deploy"];
    assert_eq!(
        output["arn"], "arn:aws:sts::000000000000:assumed-role/attini-steps/Deploy@exec-role",
        "{output}"
    );
    assert_eq!(
        output["runner_key"],
        Value::Null,
        "the runner's key reached the step"
    );
    assert_eq!(
        output["queue"],
        Value::Null,
        "a runner-only setting reached the step"
    );
    // What command-mode needs in a step (save-cdk-stacks, the region) still reaches it.
    assert!(
        output["table"].is_string() && output["region"].is_string(),
        "{output}"
    );
}

/// Sends the runner SIGTERM and returns what it printed once it exited (within a minute).
pub async fn stop_with_sigterm(runner: tokio::process::Child) -> std::process::Output {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runner.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(60), runner.wait_with_output())
        .await
        .expect("the runner did not stop on SIGTERM")
        .unwrap()
}
