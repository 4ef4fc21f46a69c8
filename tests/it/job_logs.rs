//! `attini-runner logs` against real runs on the emulator: a serve runner's stdout and stderr
//! shipped line by line into a log group, as the awslogs driver ships them, and printed back
//! for one execution (by `--log-group` and by `--stack`); `--follow` of a running job, which
//! ends when the job ends; an Attini job's S3 log object; wrong ARNs.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::world::*;

/// A world on moto: its histories show each task's parameters, which ministack leaves out.
pub async fn moto_world() -> World {
    World::on(crate::emulator::Emulator::start_kind("moto").await).await
}

/// The lines a runner wrote to stderr, once shipped.
pub type Printed = Arc<Mutex<Vec<String>>>;

/// A serve runner of `queue` whose stdout and stderr reach the log group `group` line by line;
/// its stderr lines are also kept.
pub async fn runner_shipping_to(
    world: &World,
    queue: &str,
    group: &str,
) -> (tokio::process::Child, Printed) {
    let logs = &world.clients.logs;
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .unwrap();
    let stream = format!("runner/runner/{}", world.id);
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(&stream)
        .send()
        .await
        .unwrap();
    let mut runner = serve_binary(world, queue, &[]);
    let printed = Printed::default();
    let (lines, events) = tokio::sync::mpsc::unbounded_channel();
    read(runner.stdout.take().unwrap(), lines.clone(), false);
    read(runner.stderr.take().unwrap(), lines, true);
    ship(world, group, &stream, events, printed.clone());
    (runner, printed)
}

/// A line read from the runner: when, what, from stderr.
type Read = (i64, String, bool);

/// The awslogs driver's reader: each line of `pipe`, stamped as it is read.
fn read(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    to: tokio::sync::mpsc::UnboundedSender<Read>,
    stderr: bool,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
            let _ = to.send((now.unwrap().as_millis() as i64, line, stderr));
        }
    });
}

/// The awslogs driver's sender: each line read becomes one event of `stream`; stderr lines
/// are kept once sent.
fn ship(
    world: &World,
    group: &str,
    stream: &str,
    mut events: tokio::sync::mpsc::UnboundedReceiver<Read>,
    keep: Printed,
) {
    let logs = world.clients.logs.clone();
    let (group, stream) = (group.to_string(), stream.to_string());
    tokio::spawn(async move {
        while let Some((at, line, stderr)) = events.recv().await {
            let event = InputLogEvent::builder()
                .timestamp(at)
                .message(&line)
                .build()
                .unwrap();
            logs.put_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .log_events(event)
                .send()
                .await
                .unwrap();
            if stderr {
                keep.lock().unwrap().push(line);
            }
        }
    });
}

/// Waits (up to two minutes) for `n` kept lines that contain every one of `parts`; returns
/// them.
pub async fn printed_lines(printed: &Printed, parts: &[&str], n: usize) -> Vec<String> {
    for _ in 0..1200 {
        let found: Vec<String> = printed
            .lock()
            .unwrap()
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .cloned()
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not {n} runner lines with {parts:?} within two minutes");
}

/// The runner binary with `args`, against the world's emulator.
pub fn cli(world: &World, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_attini-runner"));
    command
        .args(args)
        .envs(world.emulator.env())
        .env("ATTINI_WORK_DIR", world.tmp.path().join("cli-work"))
        .env(
            "ATTINI_RECEIVE_WAIT",
            TEST_RECEIVE_WAIT.as_secs().to_string(),
        )
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs the binary with `args`: exit code, stdout, stderr.
pub async fn run_cli(world: &World, args: &[&str]) -> (i32, String, String) {
    let out = cli(world, args).output().await.unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// A job sent by a state machine whose task state is `Run`, its lines named after it.
fn machine(queue: &str, commands: Value) -> Value {
    native_machine(
        queue,
        json!({"stepName.$": "$$.State.Name", "commands": commands}),
    )
}

/// A Task state sending `commands` as a job, its step named after the state; `dedup` tells
/// its message from the other branch's.
fn task_state(queue: &str, commands: Value, dedup: &str) -> Value {
    let mut state = machine(queue, commands)["States"]["Run"].clone();
    state["Parameters"]["MessageDeduplicationId"] = json!(dedup);
    state["Parameters"]
        .as_object_mut()
        .unwrap()
        .remove("MessageDeduplicationId.$");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_prints_one_jobs_lines_from_the_log_group_in_order_with_its_outcome() {
    let world = moto_world().await;
    let queue = world.fifo_queue("logs").await;
    let group = world.unique("/attini-runner/logs");
    let (_runner, printed) = runner_shipping_to(&world, &queue, &group).await;
    // Two jobs of one execution (moto runs one execution per server) in the same log stream,
    // printing the same lines.
    let lines = ["echo one", "echo two >&2", "printf 'three\\n'"];
    let warmup = task_state(&queue, json!(lines), "warmup");
    let mut failing = lines.to_vec();
    failing.push("exit 3");
    let run = task_state(&queue, json!(failing), "run");
    let mut warmup = warmup;
    warmup.as_object_mut().unwrap().remove("End");
    warmup["Next"] = json!("Run");
    let definition = json!({"StartAt": "Warmup", "States": {"Warmup": warmup, "Run": run}});
    let machine = world.state_machine("logs", &definition).await;
    let arn = world.start(&machine, "failing", &json!({})).await;
    assert_eq!(world.finished(&arn).await.status, "FAILED");
    printed_lines(&printed, &["job finished", "failed"], 1).await;

    let (code, stdout, stderr) = run_cli(
        &world,
        &["logs", &arn, "--log-group", &group, "--step", "Run"],
    )
    .await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let output: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains("(runner)"))
        .collect();
    assert_eq!(
        output,
        ["[Run] one", "[Run] two", "[Run] three"],
        "{stdout}"
    );
    let finished = lines
        .iter()
        .position(|l| l.starts_with("[Run] (runner) INFO job finished"));
    let finished = finished.unwrap_or_else(|| panic!("no job finished line: {stdout}"));
    assert!(lines[finished].contains("outcome=failed"), "{stdout}");
    assert!(finished > lines.iter().position(|l| *l == "[Run] three").unwrap());
    assert!(stderr.contains("the job failed: "), "{stderr}");

    // Every job of the execution, each under its own header, in the order they ran.
    let (code, all, _) = run_cli(&world, &["logs", &arn, "--log-group", &group]).await;
    assert_eq!(code, 1, "{all}");
    let headers: Vec<&str> = all.lines().filter(|l| l.starts_with("--- ")).collect();
    assert_eq!(headers.len(), 2, "{all}");
    assert!(
        headers[0].starts_with("--- Warmup (task ") && headers[1].starts_with("--- Run (task ")
    );
    let warmup_lines = all
        .lines()
        .filter(|l| l.starts_with("[Warmup] ") && !l.contains("(runner)"));
    assert_eq!(warmup_lines.count(), 3, "{all}");
    assert!(all.ends_with(&stdout), "{all}");

    // The same from the stack's output; a serve job without a log group is refused.
    let template = json!({
        "Resources": {"LogGroup": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": format!("{group}-stack")}}},
        "Outputs": {"LogGroupName": {"Value": group}},
    });
    let stack = world.unique("runner-service");
    world
        .clients
        .cloudformation
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .send()
        .await
        .unwrap();
    let (code, by_stack, _) =
        run_cli(&world, &["logs", &arn, "--stack", &stack, "--step", "Run"]).await;
    assert_eq!((code, by_stack.as_str()), (1, stdout.as_str()));
    let (code, _, stderr) = run_cli(&world, &["logs", &arn]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("step Warmup is a serve-mode job") && stderr.contains("--log-group NAME"),
        "{stderr}"
    );
    let (code, _, stderr) = run_cli(
        &world,
        &["logs", &arn, "--log-group", &group, "--step", "Deploy"],
    )
    .await;
    assert_eq!(code, 66, "{stderr}");
    assert!(
        stderr
            .contains(r#"no runner task in a step named "Deploy"; its runner steps: Warmup, Run"#),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_a_running_job_and_ends_when_it_ends() {
    let world = moto_world().await;
    let queue = world.fifo_queue("follow").await;
    let group = world.unique("/attini-runner/follow");
    let (_runner, _) = runner_shipping_to(&world, &queue, &group).await;
    let gate = world.tmp.path().join("gate");
    let commands = json!([
        "echo before",
        format!("while [ ! -e {} ]; do sleep 0.1; done", gate.display()),
        "echo after",
    ]);
    let machine = world
        .state_machine("follow", &machine(&queue, commands))
        .await;
    let arn = world.start(&machine, "follow", &json!({})).await;
    let mut follow = cli(&world, &["logs", &arn, "--log-group", &group, "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let wait = Duration::from_secs(120);
    loop {
        let line = tokio::time::timeout(wait, lines.next_line())
            .await
            .unwrap()
            .unwrap();
        if line.as_deref() == Some("[Run] before") {
            break;
        }
        assert!(line.is_some(), "logs --follow ended before the job printed");
    }
    // The job waits for the gate, so what came so far came while it ran.
    std::fs::write(&gate, "").unwrap();
    let mut rest = Vec::new();
    while let Some(line) = tokio::time::timeout(wait, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        rest.push(line);
    }
    let status = tokio::time::timeout(wait, follow.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(rest.iter().any(|l| l == "[Run] after"), "{rest:?}");
    assert!(rest.last().unwrap().contains("job finished"), "{rest:?}");
    assert_eq!(world.finished(&arn).await.status, "SUCCEEDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reads_an_attini_jobs_s3_log_object() {
    let world = moto_world().await;
    let queue = world.fifo_queue("attini-logs").await;
    let bucket = world.bucket("artifacts").await;
    let prefix = "dev/demo/d-1/distribution-origin";
    world
        .put(
            &bucket,
            &format!("{prefix}/demo.zip"),
            zip_bytes(&[("a.txt", "a", 0o644)]),
        )
        .await;
    let message = json!({
        "Properties": {"Commands": ["echo from attini", "echo second line"]},
        "deploymentPlanExecutionMetadata": {
            "retryCounter": 0,
            "sfnToken.$": "$$.Task.Token",
            "stepName.$": "$$.State.Name",
            "executionArn.$": "$$.Execution.Id",
            "executionStartTime.$": "$$.Execution.StartTime",
        },
        "deploymentOriginData": {
            "distributionName": "demo", "environment": "dev", "distributionId": "d-1",
            "objectIdentifier": "dev/demo/demo.zip#v1",
            "deploymentSource": {"deploymentSourcePrefix": prefix, "deploymentSourceBucket": bucket},
        },
    });
    let mut definition = native_machine(&queue, json!({}));
    definition["States"]["Run"]["Parameters"]["MessageBody"] = message;
    let machine = world.state_machine("attini-logs", &definition).await;
    let _runner = serve_binary_to(
        &world,
        &queue,
        &[],
        std::fs::File::create(world.tmp.path().join("runner.log")).unwrap(),
    );
    let arn = world.start(&machine, "attini", &json!({})).await;
    assert_eq!(world.finished(&arn).await.status, "SUCCEEDED");
    // The last upload runs beside the report: wait for it.
    let execution = arn.rsplit(':').next().unwrap();
    let key = format!("attini/deployment/logs/runner/dev/demo/d-1/Run/{execution}");
    for _ in 0..1200 {
        let stored = world.get(&bucket, &key).await.unwrap_or_default();
        if String::from_utf8_lossy(&stored).contains("second line") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (code, stdout, stderr) = run_cli(&world, &["logs", &arn]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["[Run] from attini", "[Run] second line"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_replay_refuse_a_wrong_arn_clearly() {
    let world = World::new().await;
    for command in ["logs", "replay"] {
        let (code, _, stderr) = run_cli(&world, &[command, "run-7"]).await;
        assert_eq!(code, 64, "{stderr}");
        assert!(
            stderr.contains(r#""run-7" is not a Step Functions execution ARN"#),
            "{stderr}"
        );
        let machine = "arn:aws:states:us-east-1:000000000000:stateMachine:Plan";
        let (code, _, stderr) = run_cli(&world, &[command, machine]).await;
        assert_eq!(code, 64, "{stderr}");
        assert!(
            stderr.contains("names a `stateMachine`, not an execution"),
            "{stderr}"
        );
        let unknown = "arn:aws:states:us-east-1:000000000000:execution:Plan:never-ran";
        let (code, _, stderr) = run_cli(&world, &[command, unknown]).await;
        assert_eq!(code, 66, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "Step Functions has no execution {unknown} in us-east-1"
            )),
            "{stderr}"
        );
    }
}
