//! `attini-runner serve` as an operator runs it: exit codes, the logs it writes, what it does
//! with a role that lacks permissions (through [`DenyingProxy`]) and how it stops on SIGINT.

use std::process::Output;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::deny::DenyingProxy;
use crate::world::*;

/// The binary serving `queue` with `args` and `env`, run to its exit (at most two minutes).
async fn serve_to_exit(world: &World, queue: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_attini-runner"));
    command
        .args(["serve", "--queue-url", queue])
        .args(args)
        .envs(world.emulator.env())
        .env("ATTINI_WORK_DIR", world.tmp.path().join("work"))
        .env("ATTINI_JOB_TIMEOUT", "120")
        .env(
            "ATTINI_RECEIVE_WAIT",
            TEST_RECEIVE_WAIT.as_secs().to_string(),
        )
        // Tests run side by side: any free port for the ops server.
        .env("ATTINI_OPS_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("serve did not exit within two minutes")
        .unwrap()
}

/// Stops a runner with SIGTERM and returns its output.
async fn stop(child: tokio::process::Child) -> Output {
    kill(Pid::from_raw(child.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the runner did not stop")
        .unwrap()
}

/// The runner's JSON log lines.
fn log_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn count(out: &Output, text: &str) -> usize {
    String::from_utf8_lossy(&out.stderr).matches(text).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_bad_setting_idle_ttl_and_a_queue_it_may_not_read() {
    let world = World::new().await;
    let queue = world.fifo_queue("exits").await;
    let bad = serve_to_exit(&world, &queue, &[], &[("ATTINI_MAX_CONCURRENT_JOBS", "0")]).await;
    assert_eq!(bad.status.code(), Some(64));
    assert_eq!(
        count(&bad, "ATTINI_MAX_CONCURRENT_JOBS=\"0\" is not valid"),
        1
    );

    let idle = serve_to_exit(&world, &queue, &["--idle-ttl", "1"], &[]).await;
    assert_eq!(
        idle.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&idle.stderr)
    );

    let denied = [
        "AmazonSQS.ReceiveMessage",
        "AmazonSQS.ChangeMessageVisibility",
    ];
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &denied).await;
    let out = serve_to_exit(&world, &queue, &[], &[("AWS_ENDPOINT_URL", &proxy.url)]).await;
    assert_eq!(out.status.code(), Some(1));
    let stopped: Vec<Value> = log_lines(&out)
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l["message"] == "stopped")
        .collect();
    assert_eq!(stopped.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    let reason = stopped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot be used: ReceiveMessage failed: AccessDenied"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_a_token_is_deleted_with_an_error_naming_its_id() {
    let world = World::new().await;
    let queue = world.fifo_queue("tokenless").await;
    let sent = world
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(r#"{"commands": ["true"]}"#)
        .message_group_id("g")
        .message_deduplication_id("d")
        .send()
        .await
        .unwrap();
    let id = sent.message_id.unwrap();
    let runner = serve_binary(&world, &queue, &[]);
    world.wait_until_empty(&queue).await;
    let out = stop(runner).await;
    let errors: Vec<Value> = log_lines(&out)
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l["message_id"] == id.as_str())
        .collect();
    assert_eq!(errors.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(errors[0]["message"], "message deleted without an answer");
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .contains("has no task token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_change_visibility_the_message_is_deleted_before_the_job_runs() {
    let world = World::new().await;
    let queue = world.fifo_queue("no-lease").await;
    let dir = world.tmp.path();
    let (started, go) = (dir.join("started"), dir.join("go"));
    let job = json!({"commands": [
        format!("touch {}", started.display()),
        format!("for i in $(seq 600); do [ -e {} ] && break; sleep 0.1; done", go.display()),
        "echo '\"ran\"' > $ATTINI_OUTPUT",
    ]});
    let machine = world
        .state_machine("no-lease", &native_machine(&queue, job))
        .await;
    let denied = ["AmazonSQS.ChangeMessageVisibility"];
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &denied).await;
    let runner = serve_binary(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)]);
    let execution = world.start(&machine, "n1", &json!({})).await;
    wait_for_file(&started).await;
    assert_eq!(
        world.messages_left(&queue).await,
        0,
        "the message outlived the job's start"
    );
    std::fs::write(&go, "").unwrap();
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("ran")), "{done:?}");
    let out = stop(runner).await;
    assert_eq!(count(&out, "may not call sqs:ChangeMessageVisibility"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_heartbeat_permission_is_tolerated_and_said_once() {
    let world = World::new().await;
    let queue = world.fifo_queue("no-beat").await;
    // heartbeatSeconds 3: a beat every second, three or more while the job runs.
    let job = json!({"commands": ["sleep 3.5", "echo '\"beaten\"' > $ATTINI_OUTPUT"], "heartbeatSeconds": 3});
    let machine = world
        .state_machine("no-beat", &native_machine(&queue, job))
        .await;
    let denied = ["AWSStepFunctions.SendTaskHeartbeat"];
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &denied).await;
    let runner = serve_binary(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)]);
    let done = world
        .finished(&world.start(&machine, "b1", &json!({})).await)
        .await;
    assert_eq!(done.output, Some(json!("beaten")), "{done:?}");
    let out = stop(runner).await;
    assert_eq!(count(&out, "no states:SendTaskHeartbeat permission"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_like_sigterm() {
    let world = World::new().await;
    let queue = world.fifo_queue("sigint").await;
    let started = world.tmp.path().join("started");
    let job = json!({"commands": [
        format!("touch {}", started.display()),
        "sleep 2",
        "echo '\"finished\"' > $ATTINI_OUTPUT",
    ]});
    let machine = world
        .state_machine("sigint", &native_machine(&queue, job))
        .await;
    let runner = serve_binary(&world, &queue, &[("ATTINI_DRAIN_GRACE", "60")]);
    let execution = world.start(&machine, "i1", &json!({})).await;
    wait_for_file(&started).await;
    kill(Pid::from_raw(runner.id().unwrap() as i32), Signal::SIGINT).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(120), runner.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        count(
            &out,
            "draining: jobs not started go back, jobs that fit the grace go on, jobs that do not are interrupted now"
        ),
        1
    );
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("finished")), "{done:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attini_log_level_sets_what_is_logged() {
    let world = World::new().await;
    let queue = world.fifo_queue("levels").await;
    let idle = ["--idle-ttl", "1"];
    let quiet = serve_to_exit(&world, &queue, &idle, &[("ATTINI_LOG_LEVEL", "ERROR")]).await;
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(count(&quiet, "serving jobs"), 0);
    let info = serve_to_exit(&world, &queue, &idle, &[("ATTINI_LOG_LEVEL", "INFO")]).await;
    assert_eq!(count(&info, "serving jobs"), 1);
    assert!(log_lines(&info).iter().all(|l| l["level"] != "DEBUG"));
    let debug = serve_to_exit(&world, &queue, &idle, &[("ATTINI_LOG_LEVEL", "DEBUG")]).await;
    assert!(log_lines(&debug).iter().any(|l| l["level"] == "DEBUG"));
    let bad = serve_to_exit(&world, &queue, &idle, &[("ATTINI_LOG_LEVEL", "LOUD")]).await;
    assert_eq!(bad.status.code(), Some(64));
    assert_eq!(count(&bad, "ATTINI_LOG_LEVEL=\"LOUD\" is not valid"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stderr_nobody_reads_does_not_stall_the_runner() {
    let world = World::new().await;
    let queue = world.fifo_queue("unread").await;
    let job = json!({"commands": ["echo '\"ok\"' > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("unread", &native_machine(&queue, job))
        .await;
    // DEBUG logs of every AWS call fill a 64 KiB pipe within a few jobs; the test never
    // reads it until the end.
    let debug = [("RUST_LOG", "debug")];
    let mut runner = serve_binary(&world, &queue, &debug);
    for n in 0..30 {
        let execution = world.start(&machine, &format!("u{n}"), &json!({})).await;
        let done = world.finished(&execution).await;
        assert_eq!(done.output, Some(json!("ok")), "job {n}: {done:?}");
    }
    runner.start_kill().unwrap();
}

/// SQS (and the emulator) keep a long poll open to its end even when the runner has gone,
/// and hand it what is sent meanwhile: a message sent just after a stop would stay invisible
/// for the queue's visibility timeout (300 s here). The runner keeps its last poll and gives
/// what it brings back at once, so the next consumer gets it now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_as_an_idle_runner_stops_goes_back_to_the_queue_at_once() {
    let world = World::new().await;
    let queue = world.fifo_queue_with("last-poll", 300).await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    // Recorded as it arrives (a fault of no delay), not when its long poll ends.
    let receive = "AmazonSQS.ReceiveMessage";
    proxy.fault(receive, crate::deny::Fault::Delay(Duration::ZERO), 1);
    let log_path = world.tmp.path().join("runner.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // SQS's longest poll, as shipped, so the message surely comes while it is open.
    let env = [
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("ATTINI_RECEIVE_WAIT", "20"),
    ];
    let mut runner = serve_binary_to(&world, &queue, &env, log);
    for _ in 0..1200 {
        if proxy.count(receive) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(proxy.count(receive), 1, "the runner never polled");
    kill(Pid::from_raw(runner.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let sent = world
        .clients
        .sqs
        .send_message()
        .queue_url(&queue)
        .message_body(r#"{"taskToken": "late", "commands": ["true"]}"#)
        .message_group_id("g")
        .message_deduplication_id("late")
        .send()
        .await
        .unwrap();
    let (code, log) = exit_and_log(&mut runner, &log_path).await;
    assert_eq!(code, Some(0), "{log}");
    let got = world
        .clients
        .sqs
        .receive_message()
        .queue_url(&queue)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = got
        .messages()
        .iter()
        .filter_map(|m| m.message_id())
        .collect();
    assert_eq!(ids, [sent.message_id().unwrap()], "{log}");
    assert!(
        log.contains("the runner stopped during the long poll that received it"),
        "{log}"
    );
}
