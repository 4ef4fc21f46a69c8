//! What a team copies works as shipped. The Task state that sends a job (the standalone
//! example, the service stack's state machine, the README's snippet) is one source: the files
//! are compared field by field, and the example runs on the emulator with only its
//! placeholders (`QUEUE_URL`, `BUCKET`) filled in:
//! - a runner stopped mid-job answers `Runner.Interrupted`, the state's own `Retry` reaches a
//!   second runner, the execution succeeds and the job's effect happens once (the old
//!   deduplication id, the execution name, made SQS drop the retry's message);
//! - three jobs of one execution, as a `Parallel` and as a `Map`, sent about 1 s apart, run side
//!   by side on one runner (the old group id, the execution name, made a FIFO queue hand them
//!   out one after another);
//! - no shipped state has `HeartbeatSeconds` (Step Functions counts it from the send, so a job
//!   waiting in the queue would time out; the lease covers a dead runner), and each has a
//!   `TimeoutSeconds` above its job's timeout.
//!
//! The Attini plan's `Retry` waits out the dispatcher's 5-minute deduplication window. That is
//! checked in the file only: neither emulator can run it (ministack caps a `Retry` interval at
//! 60 s, so the retry lands inside the window; moto replays the first failure to every attempt).

use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::emulator::Emulator;
use crate::harness::group_exists;
use crate::world::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap()
}

/// The standalone example's state machine with its placeholders filled in, as the demo does.
fn example_machine(queue: &str, bucket: &str) -> Value {
    let text = read("examples/standalone/state-machine.json")
        .replace("QUEUE_URL", queue)
        .replace("BUCKET", bucket);
    serde_json::from_str(&text).unwrap()
}

/// The example's one Task state.
fn example_state(queue: &str, bucket: &str) -> Value {
    example_machine(queue, bucket)["States"]["Greet"].clone()
}

/// The state machine of `cloudformation/runner-service.yaml` (its `DefinitionString`), with
/// the stack's references filled in as CloudFormation would.
fn stack_machine() -> Value {
    let template = read("cloudformation/runner-service.yaml");
    let start = template
        .find("DefinitionString: !Sub |")
        .expect("the stack's state machine");
    let body: Vec<&str> = template[start..]
        .lines()
        .skip(1)
        .take_while(|line| line.starts_with("        ") || line.trim().is_empty())
        .collect();
    let text = body
        .join("\n")
        .replace("${AWS::Partition}", "aws")
        .replace("${JobQueue}", "QUEUE_URL");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The first ```json block after `heading` in the README.
pub fn readme_json_after(heading: &str) -> Value {
    let readme = read("README.md");
    let at = readme.find(heading).expect("the README section");
    let block = &readme[at..];
    let start = block.find("```json\n").unwrap() + "```json\n".len();
    let end = start + block[start..].find("```").unwrap();
    let text = block[start..end].trim().trim_end_matches(',');
    serde_json::from_str(&format!("{{{text}}}")).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn the_shipped_task_states_are_one_source() {
    let example = example_state("QUEUE_URL", "BUCKET");
    // The README quotes the example's state whole.
    let readme = readme_json_after("### Standalone mode");
    assert_eq!(readme["Greet"], example, "README vs the example's file");

    let stack = stack_machine();
    let run_job = &stack["States"]["RunJob"];
    for key in ["MessageGroupId.$", "MessageDeduplicationId.$", "QueueUrl"] {
        assert_eq!(
            run_job["Parameters"][key], example["Parameters"][key],
            "the stack's {key}"
        );
    }
    for key in ["Resource", "Retry"] {
        assert_eq!(run_job[key], example[key], "the stack's {key}");
    }
    for (name, state) in [("example", &example), ("stack", run_job)] {
        // Group and deduplication id differ per task and per attempt.
        let id = state["Parameters"]["MessageGroupId.$"].as_str().unwrap();
        assert!(
            id.contains("$$.Task.Token") && id.contains("$$.State.RetryCount"),
            "{name}: {id}"
        );
        assert!(
            state.get("HeartbeatSeconds").is_none(),
            "{name}: HeartbeatSeconds counts the queue wait"
        );
        let body = &state["Parameters"]["MessageBody"];
        assert!(body.get("heartbeatSeconds").is_none(), "{name}");
        let job = body["timeoutSeconds"].as_u64().unwrap();
        let state_timeout = state["TimeoutSeconds"].as_u64().unwrap();
        assert!(
            state_timeout >= job + 300,
            "{name}: TimeoutSeconds {state_timeout} leaves no queue wait beyond the job's {job} s"
        );
        assert_eq!(
            state["Retry"][0]["ErrorEquals"],
            json!(["Runner.Interrupted"]),
            "{name}"
        );
    }
}

/// `cloudformation/attini-runner.yaml`: every `Retry` of `Runner.Interrupted` waits longer
/// than SQS's 5-minute deduplication window, because the Attini dispatcher's deduplication id
/// (`md5(executionArn + stepName)`, CONTRACT 11.1) is the same for every attempt.
#[test]
fn the_attini_plans_retry_outlasts_the_dispatchers_deduplication_window() {
    let template = read("cloudformation/attini-runner.yaml");
    let mut retries = 0;
    let lines: Vec<&str> = template.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("ErrorEquals: [Runner.Interrupted]") {
            continue;
        }
        retries += 1;
        let interval = lines[i..]
            .iter()
            .take(5)
            .find_map(|l| l.trim().strip_prefix("IntervalSeconds:"))
            .expect("an IntervalSeconds")
            .trim()
            .parse::<u64>()
            .unwrap();
        assert!(
            interval > 300,
            "a retry after {interval} s is dropped as a duplicate"
        );
    }
    assert!(retries > 0, "the plan retries Runner.Interrupted");
}

/// A zip holding `greet.sh` with `script` as its body.
fn greet_zip(script: &str) -> Vec<u8> {
    zip_bytes(&[("greet.sh", &format!("#!/bin/bash\n{script}"), 0o755)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_retry_reaches_another_runner_and_the_job_runs_once() {
    let world = World::on(Emulator::start_kind("ministack").await).await;
    let queue = world.fifo_queue_with("retried", 5).await;
    let bucket = world.bucket("retried").await;
    let marks = world.tmp.path().join("marks");
    std::fs::create_dir(&marks).unwrap();
    let m = marks.display();
    let script = format!(
        "if [ ! -e {m}/attempted ]; then\n  touch {m}/attempted\n  read -r _ _ _ _ pgid _ < /proc/$$/stat; echo \"$pgid\" > {m}/pgid\n  sleep 600\nfi\necho effect >> {m}/effects\necho '\"done\"' > \"$ATTINI_OUTPUT\"\n"
    );
    world
        .put(&bucket, "hello/dist.zip", greet_zip(&script))
        .await;
    let machine = world
        .state_machine("retried", &example_machine(&queue, &bucket))
        .await;
    let execution = world.start(&machine, "r1", &json!({})).await;

    let first = serve_binary(&world, &queue, &[("ATTINI_DRAIN_GRACE", "1")]);
    wait_for_file(&marks.join("pgid")).await;
    kill(Pid::from_raw(first.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), first.wait_with_output())
        .await
        .expect("the runner did not stop")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pgid: i32 = std::fs::read_to_string(marks.join("pgid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !group_exists(pgid),
        "the interrupted job's processes survived"
    );

    let mut second = serve_binary(&world, &queue, &[]);
    let done = world.finished(&execution).await;
    second.start_kill().unwrap();
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(done.output.unwrap()["greet"], json!("done"));
    assert_eq!(
        std::fs::read_to_string(marks.join("effects")).unwrap(),
        "effect\n",
        "the job's effect happened more or less than once"
    );
    let failures = world.task_failures(&execution).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, "Runner.Interrupted");
}

/// A job that notes when it starts and ends (`start <ns>` / `end <ns>` lines) and takes 4 s.
fn timed_job_zip(marks: &Path) -> Vec<u8> {
    let m = marks.display();
    greet_zip(&format!(
        "echo \"start $(date +%s%N)\" >> {m}/times\nsleep 4\necho \"end $(date +%s%N)\" >> {m}/times\n"
    ))
}

/// Whether every job started before the first one ended, from the `times` file of
/// [`timed_job_zip`], for `jobs` jobs.
fn side_by_side(marks: &Path, jobs: usize) -> (bool, String) {
    let times = std::fs::read_to_string(marks.join("times")).unwrap();
    let of = |what: &str| -> Vec<u128> {
        times
            .lines()
            .filter_map(|l| l.strip_prefix(what))
            .map(|t| t.trim().parse().unwrap())
            .collect()
    };
    let (starts, ends) = (of("start "), of("end "));
    assert_eq!(starts.len(), jobs, "{times}");
    assert_eq!(ends.len(), jobs, "{times}");
    let last_start = starts.iter().max().unwrap();
    let first_end = ends.iter().min().unwrap();
    (last_start < first_end, times)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_and_a_map_of_the_shipped_state_run_side_by_side() {
    // ministack runs the branches of a Parallel side by side (moto one after another).
    let world = World::on(Emulator::start_kind("ministack").await).await;
    let queue = world.fifo_queue_with("fanout", 10).await;
    let bucket = world.bucket("fanout").await;
    let runner = world.serve(&queue, 5);

    // Parallel: three branches, the second and third a second and two later.
    let parallel_marks = world.tmp.path().join("parallel");
    std::fs::create_dir(&parallel_marks).unwrap();
    world
        .put(&bucket, "hello/dist.zip", timed_job_zip(&parallel_marks))
        .await;
    let state = example_state(&queue, &bucket);
    let branches: Vec<Value> = (0..3)
        .map(|i| {
            json!({"StartAt": format!("Stagger{i}"), "States": {
                format!("Stagger{i}"): {"Type": "Wait", "Seconds": i, "Next": format!("Greet{i}")},
                format!("Greet{i}"): state,
            }})
        })
        .collect();
    let parallel = json!({"StartAt": "Fan", "States": {
        "Fan": {"Type": "Parallel", "Branches": branches, "End": true}}});
    let machine = world.state_machine("parallel", &parallel).await;
    let execution = world.start(&machine, "p1", &json!({})).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let (together, times) = side_by_side(&parallel_marks, 3);
    assert!(
        together,
        "the Parallel's jobs ran one after another:\n{times}"
    );

    // Map: three iterations, staggered the same way by their items.
    let map_marks = world.tmp.path().join("map");
    std::fs::create_dir(&map_marks).unwrap();
    world
        .put(&bucket, "hello/dist.zip", timed_job_zip(&map_marks))
        .await;
    let map = json!({"StartAt": "Fan", "States": {"Fan": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 0,
        "Iterator": {"StartAt": "Stagger", "States": {
            "Stagger": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Greet"},
            "Greet": state,
        }},
        "End": true}}});
    let machine = world.state_machine("map", &map).await;
    let items = json!({"items": [{"delay": 0}, {"delay": 1}, {"delay": 2}]});
    let execution = world.start(&machine, "m1", &items).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let (together, times) = side_by_side(&map_marks, 3);
    assert!(together, "the Map's jobs ran one after another:\n{times}");
    runner.stop().await;
}
