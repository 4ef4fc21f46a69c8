//! Fixtures of the AWS-mode tests: queues, buckets, tables and real state machines on the
//! emulator, the runner served in-process, and waiting for an execution to end.

use std::sync::Arc;
use std::time::Duration;

use attini_runner::aws::Clients;
use attini_runner::engine::EngineConfig;
use attini_runner::modes::serve::{self as standalone, ServeConfig};
use attini_runner::worker::protection::ProtectionConfig;
use attini_runner::worker::{Exit, Stats, WorkerConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::emulator::Emulator;

/// The job timeout of every runner a test starts (the default is an hour).
pub const TEST_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// The long poll of every runner a test starts (`ATTINI_RECEIVE_WAIT`; 20 s as shipped): a
/// stop waits for the poll in flight, and a test stops many idle runners.
pub const TEST_RECEIVE_WAIT: Duration = Duration::from_secs(2);

/// Any role: the emulators do not check it.
pub const ROLE: &str = "arn:aws:iam::000000000000:role/attini-runner-test";

/// An emulator with clients and a temporary folder.
pub struct World {
    pub emulator: Emulator,
    pub clients: Clients,
    pub tmp: tempfile::TempDir,
    /// Appended to the name of every queue, bucket, table and state machine, so that tests
    /// sharing one emulator (`ATTINI_TEST_EMULATOR=http://...`) never meet.
    pub id: String,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl World {
    pub async fn new() -> World {
        Self::on(Emulator::start().await).await
    }

    /// A world on a given emulator (for scenarios only one emulator gets right).
    pub async fn on(emulator: Emulator) -> World {
        let clients = emulator.clients().await;
        World {
            emulator,
            clients,
            tmp: tempfile::tempdir().unwrap(),
            id: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
        }
    }

    /// A FIFO queue like Attini's (visibility 15 s).
    pub async fn fifo_queue(&self, name: &str) -> String {
        self.fifo_queue_with(name, 15).await
    }

    /// A name unique to this world.
    pub fn unique(&self, name: &str) -> String {
        format!("{name}-{}", self.id)
    }

    /// A standard queue with the given visibility timeout in seconds.
    pub async fn standard_queue_with(&self, name: &str, visibility: u32) -> String {
        self.queue_of(self.unique(name), false, visibility).await
    }

    /// A FIFO queue with the given visibility timeout in seconds.
    pub async fn fifo_queue_with(&self, name: &str, visibility: u32) -> String {
        let name = format!("{}.fifo", self.unique(name));
        self.queue_of(name, true, visibility).await
    }

    async fn queue_of(&self, name: String, fifo: bool, visibility: u32) -> String {
        let mut request = self.clients.sqs.create_queue().queue_name(name).attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        );
        if fifo {
            request = request.attributes(QueueAttributeName::FifoQueue, "true");
        }
        request.send().await.unwrap().queue_url.unwrap()
    }

    /// Messages in a queue, visible and in flight.
    pub async fn messages_left(&self, queue: &str) -> u64 {
        let attrs = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        assert_eq!(
            attrs.len(),
            2,
            "the emulator did not count the queue: {attrs:?}"
        );
        attrs.values().map(|v| v.parse::<u64>().unwrap()).sum()
    }

    /// Waits (up to a minute) until the queue holds no message, visible or in flight.
    pub async fn wait_until_empty(&self, queue: &str) {
        for _ in 0..600 {
            if self.messages_left(queue).await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{queue} still holds messages after a minute");
    }

    /// A bucket; returns its (unique) name.
    pub async fn bucket(&self, name: &str) -> String {
        let name = self.unique(name);
        self.clients
            .s3
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap();
        name
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.clients
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .unwrap();
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let out = self
            .clients
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        Some(out.body.collect().await.unwrap().into_bytes().to_vec())
    }

    /// A table with a string hash key and a range key of `range_type`; returns its (unique)
    /// name.
    pub async fn table(
        &self,
        name: &str,
        hash: &str,
        range: &str,
        range_type: ScalarAttributeType,
    ) -> String {
        let name = self.unique(name);
        self.clients
            .dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(hash)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(range)
                    .attribute_type(range_type)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(hash)
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(range)
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        name
    }

    pub async fn state_machine(&self, name: &str, definition: &Value) -> String {
        self.clients
            .sfn
            .create_state_machine()
            .name(self.unique(name))
            .definition(definition.to_string())
            .role_arn(ROLE)
            .send()
            .await
            .unwrap()
            .state_machine_arn
    }

    pub async fn start(&self, state_machine: &str, name: &str, input: &Value) -> String {
        self.clients
            .sfn
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .unwrap()
            .execution_arn
    }

    /// The execution as DescribeExecution shows it now.
    async fn describe(
        &self,
        execution: &str,
    ) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
        self.clients
            .sfn
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .unwrap()
    }

    /// The execution's status now.
    pub async fn status(&self, execution: &str) -> String {
        self.describe(execution).await.status.as_str().to_string()
    }

    /// The (error, cause) of every TaskFailed event in the execution's history, in order.
    pub async fn task_failures(&self, execution: &str) -> Vec<(String, String)> {
        let history = self
            .clients
            .sfn
            .get_execution_history()
            .execution_arn(execution)
            .send()
            .await
            .unwrap();
        history
            .events
            .iter()
            .filter_map(|e| e.task_failed_event_details.as_ref())
            .map(|d| {
                let error = d.error.clone().unwrap_or_default();
                (error, d.cause.clone().unwrap_or_default())
            })
            .collect()
    }

    /// Waits (up to two minutes) for the execution to leave RUNNING.
    pub async fn finished(&self, execution: &str) -> Finished {
        match self
            .finished_within(execution, Duration::from_secs(120))
            .await
        {
            Some(done) => done,
            None => panic!("execution {execution} still RUNNING after two minutes"),
        }
    }

    /// How an execution ended, or `None` while it is still running after `limit` (polled
    /// every 100 ms).
    pub async fn finished_within(&self, execution: &str, limit: Duration) -> Option<Finished> {
        let polls = limit.as_millis() / 100;
        for _ in 0..polls.max(1) {
            let d = self.describe(execution).await;
            if d.status.as_str() != "RUNNING" {
                return Some(Finished {
                    status: d.status.as_str().to_string(),
                    output: d.output.map(|o| serde_json::from_str(&o).unwrap()),
                    error: d.error,
                    cause: d.cause,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// Engine settings with the work directory in the temporary folder.
    pub fn engine_config(&self) -> EngineConfig {
        let mut config = attini_runner::config::Settings::from_lookup(|_| None)
            .unwrap()
            .engine;
        config.work_dir = self.tmp.path().join("work");
        config.kill_grace = Duration::from_secs(1);
        // No job of a test may run for the hour of the default.
        config.job_timeout = TEST_JOB_TIMEOUT;
        config
    }

    /// Serves `queue` in-process with `max_jobs` slots.
    pub fn serve(&self, queue: &str, max_jobs: usize) -> Serving {
        self.serve_with(queue, max_jobs, self.engine_config())
    }

    /// Serves `queue` in-process with `max_jobs` slots and these engine settings.
    pub fn serve_with(&self, queue: &str, max_jobs: usize, engine: EngineConfig) -> Serving {
        self.serve_through(queue, max_jobs, engine, self.clients.clone())
    }

    /// Serves `queue` in-process, reaching AWS through `clients` (a proxy, say).
    pub fn serve_through(
        &self,
        queue: &str,
        max_jobs: usize,
        engine: EngineConfig,
        clients: Clients,
    ) -> Serving {
        let shutdown = CancellationToken::new();
        let stats = Arc::new(Stats::default());
        let config = ServeConfig {
            queue_url: queue.to_string(),
            worker: WorkerConfig {
                max_jobs,
                idle_ttl: None,
                receive_wait: TEST_RECEIVE_WAIT,
                drain_grace: Duration::from_secs(90),
                report_retries: Default::default(),
                max_lease: attini_runner::worker::SQS_MAX_LEASE,
                max_runner_failures: 5,
            },
            ecs_agent_uri: None,
            protection: ProtectionConfig {
                minutes: 15,
                max_minutes: 60,
            },
            job_roles: Default::default(),
            refuse_literal_secrets: false,
            locks: None,
        };
        let handle = tokio::spawn(standalone::serve(
            config,
            engine,
            clients,
            shutdown.clone(),
            stats.clone(),
        ));
        Serving {
            shutdown,
            stats,
            handle,
        }
    }
}

/// A runner served in-process.
pub struct Serving {
    pub shutdown: CancellationToken,
    pub stats: Arc<Stats>,
    handle: JoinHandle<Result<Exit, attini_runner::engine::EngineError>>,
}

impl Serving {
    pub async fn stop(self) -> Exit {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits for the runner to stop by itself.
    pub async fn wait(self) -> Exit {
        self.handle.await.unwrap().unwrap()
    }
}

/// A state machine with one Task that sends `body` (plus the task token and the execution
/// input as `input`) to `queue` and waits for the token.
pub fn native_machine(queue: &str, body: Value) -> Value {
    let mut message = json!({"taskToken.$": "$$.Task.Token", "input.$": "$"});
    for (k, v) in body.as_object().unwrap() {
        message[k] = v.clone();
    }
    json!({
        "StartAt": "Run",
        "States": {"Run": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": queue,
                "MessageGroupId.$": "$$.Execution.Name",
                "MessageDeduplicationId.$": "$$.Execution.Name",
                "MessageBody": message
            },
            "End": true
        }}
    })
}

/// A zip with the given files.
pub fn zip_bytes(files: &[(&str, &str, u32)]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content, mode) in files {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*name, options).unwrap();
        zip.write_all(content.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Waits (up to a minute) until `path` exists.
pub async fn wait_for_file(path: &std::path::Path) {
    for _ in 0..600 {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} did not appear within a minute", path.display());
}

/// As [`serve_binary`], with the runner's stdout and stderr going to `log` (a pipe that a test
/// does not read fills up after 64 KiB and stalls the runner's logging).
pub fn serve_binary_to(
    world: &World,
    queue: &str,
    extra: &[(&str, &str)],
    log: std::fs::File,
) -> tokio::process::Child {
    serve_command(world, queue, extra)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

pub fn serve_command(
    world: &World,
    queue: &str,
    extra: &[(&str, &str)],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_attini-runner"));
    command
        .args(["serve", "--queue-url", queue])
        .envs(world.emulator.env())
        .env("ATTINI_WORK_DIR", world.tmp.path().join("work"))
        .env("ATTINI_KILL_GRACE", "1")
        .env(
            "ATTINI_RECEIVE_WAIT",
            TEST_RECEIVE_WAIT.as_secs().to_string(),
        )
        .env("ATTINI_JOB_TIMEOUT", TEST_JOB_TIMEOUT.as_secs().to_string())
        // Tests run side by side: any free port for the ops server.
        .env("ATTINI_OPS_ADDR", "127.0.0.1:0")
        .envs(extra.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// The runner binary serving `queue` against the world's emulator, with `extra` variables.
pub fn serve_binary(world: &World, queue: &str, extra: &[(&str, &str)]) -> tokio::process::Child {
    serve_command(world, queue, extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (up to two minutes) for `runner` to exit by itself; its exit code and the log it
/// wrote to `log_path`.
pub async fn exit_and_log(
    runner: &mut tokio::process::Child,
    log_path: &std::path::Path,
) -> (Option<i32>, String) {
    let status = tokio::time::timeout(Duration::from_secs(120), runner.wait())
        .await
        .expect("the runner did not exit by itself")
        .unwrap();
    (status.code(), std::fs::read_to_string(log_path).unwrap())
}
