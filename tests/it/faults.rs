//! Never lose, hang or double-run a job: a runner killed mid-job, an execution stopped while its
//! job runs, and a job longer than several visibility windows. A runner stopped mid-job, whose
//! retry goes to another, is in `shipped.rs` (it runs the example state machine as shipped).

use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::json;

use crate::emulator::Emulator;
use crate::harness::{exists, group_exists};
use crate::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_runner_is_run_by_the_next_one() {
    let world = World::new().await;
    let queue = world.fifo_queue_with("killed", 3).await;
    let dir = world.tmp.path().join("marks");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let machine = world.state_machine("killed", &native_machine(&queue, json!({"commands": [
        format!("echo \"$RUNNER_NAME\" >> {d}/attempts; echo $$ > {d}/pgid-$RUNNER_NAME; touch {d}/started-$RUNNER_NAME"),
        "if [ \"$RUNNER_NAME\" = first ]; then sleep 600; fi",
        "echo \"\\\"$RUNNER_NAME\\\"\" > $ATTINI_OUTPUT",
    ]}))).await;
    let execution = world.start(&machine, "k1", &json!({})).await;
    let mut first = serve_binary(&world, &queue, &[("RUNNER_NAME", "first")]);
    wait_for_file(&dir.join("started-first")).await;
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    // The killed runner's job lives on as an orphan; end it so it cannot report.
    let orphan: i32 = std::fs::read_to_string(dir.join("pgid-first"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = killpg(Pid::from_raw(orphan), Signal::SIGKILL);

    let mut second = serve_binary(&world, &queue, &[("RUNNER_NAME", "second")]);
    let done = world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(done.output, Some(json!("second")));
    assert_eq!(
        std::fs::read_to_string(dir.join("attempts")).unwrap(),
        "first\nsecond\n"
    );
    second.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_three_visibility_windows_runs_once() {
    let world = World::new().await;
    let queue = world.fifo_queue_with("long", 2).await;
    let counter = world.tmp.path().join("starts");
    let machine = world
        .state_machine(
            "long",
            &native_machine(
                &queue,
                json!({"commands": [
                    format!("echo start >> {}", counter.display()),
                    "sleep 7",
                    "echo '\"finished\"' > $ATTINI_OUTPUT",
                ]}),
            ),
        )
        .await;
    let runner = world.serve(&queue, 3);
    let execution = world.start(&machine, "l1", &json!({})).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("finished")));
    runner.stop().await;
    assert_eq!(
        std::fs::read_to_string(&counter).unwrap(),
        "start\n",
        "the job ran more than once"
    );
    assert_eq!(
        world.messages_left(&queue).await,
        0,
        "the message was not deleted after the report"
    );
}

/// Only moto answers a heartbeat for a stopped execution with an error (ministack accepts it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_execution_ends_the_job_and_reports_nothing() {
    let world = World::on(Emulator::start_kind("moto").await).await;
    let queue = world.fifo_queue_with("stopped", 3).await;
    let dir = world.tmp.path();
    let bg = dir.join("bg");
    let machine = world
        .state_machine(
            "stopped",
            &native_machine(
                &queue,
                json!({"commands": [
                    format!("sleep 1000 & echo $! > {}", bg.display()),
                    "wait",
                ]}),
            ),
        )
        .await;
    let runner = world.serve(&queue, 1);
    let execution = world.start(&machine, "s1", &json!({})).await;
    wait_for_file(&bg).await;
    let pid: i32 = std::fs::read_to_string(&bg)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    world
        .clients
        .sfn
        .stop_execution()
        .execution_arn(&execution)
        .send()
        .await
        .unwrap();
    let stopped_at = std::time::Instant::now();
    for _ in 0..600 {
        if !exists(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !exists(pid),
        "the job's processes outlived the stopped execution"
    );
    // A figure for the record (beats are 1 s apart here), not an assertion.
    eprintln!(
        "job processes gone {:?} after StopExecution",
        stopped_at.elapsed()
    );
    let stats = runner.stats.clone();
    runner.stop().await;
    let figures = stats.figures.reading();
    assert_eq!(figures.total("attini_runner_jobs_total", &[]), 1.0);
    assert_eq!(
        figures.total("attini_runner_jobs_total", &[("outcome", "cancelled")]),
        1.0,
        "the heartbeat did not see the stopped execution"
    );
    assert_eq!(
        figures.total("attini_runner_reports_total", &[]),
        0.0,
        "a stopped execution's job must not be reported"
    );
    assert_eq!(
        world.messages_left(&queue).await,
        0,
        "the cancelled job's message was not deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_unreachable_for_fifteen_seconds_mid_job_is_ridden_out() {
    let world = World::new().await;
    let proxy = crate::proxy::Proxy::before(&world.emulator.endpoint).await;
    let through_proxy = attini_runner::aws::Clients::for_endpoint(
        &proxy.url,
        crate::emulator::REGION,
        Default::default(),
    )
    .await;
    let queue = world.fifo_queue_with("outage", 6).await;
    let dir = world.tmp.path();
    let (started, runs) = (dir.join("started"), dir.join("runs"));
    let machine = world
        .state_machine(
            "outage",
            &native_machine(
                &queue,
                json!({"commands": [
                    format!("echo run >> {}", runs.display()),
                    format!("touch {}", started.display()),
                    "sleep 5",
                    "echo '\"survived\"' > $ATTINI_OUTPUT",
                ]}),
            ),
        )
        .await;
    let runner = world.serve_through(&queue, 2, world.engine_config(), through_proxy);
    let execution = world.start(&machine, "o1", &json!({})).await;
    wait_for_file(&started).await;
    proxy.down();
    // The outage outlasts the job and two visibility windows; the runner must ride it out.
    tokio::time::sleep(Duration::from_secs(15)).await;
    proxy.up();
    let done = world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(done.output, Some(json!("survived")));
    // The lease ran out during the outage, so the delete may have missed; the message then
    // comes back and the runner must delete it, not run the job again.
    world.wait_until_empty(&queue).await;
    let stats = runner.stats.clone();
    runner.stop().await;
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        "run\n",
        "the job ran more than once"
    );
    assert_eq!(
        stats
            .figures
            .reading()
            .total("attini_runner_reports_total", &[]),
        1.0
    );
}

/// A task may start before its network can reach AWS (a VPC endpoint or NAT still coming up).
/// The runner's credentials check retries for its 30 s, then warns and goes on instead of
/// refusing to start; once AWS answers, the job is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_started_while_aws_is_unreachable_serves_once_it_is_back() {
    let world = World::new().await;
    let proxy = crate::proxy::Proxy::before(&world.emulator.endpoint).await;
    proxy.down();
    let queue = world.fifo_queue("late-aws").await;
    let machine = world
        .state_machine(
            "late-aws",
            &native_machine(
                &queue,
                json!({"commands": ["echo '\"served\"' > $ATTINI_OUTPUT"]}),
            ),
        )
        .await;
    let log_path = world.tmp.path().join("runner.log");
    let mut runner = serve_binary_to(
        &world,
        &queue,
        &[("AWS_ENDPOINT_URL", proxy.url.as_str())],
        std::fs::File::create(&log_path).unwrap(),
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    // The check gives up after 30 s of retries; two minutes leave room for a slow machine.
    for _ in 0..1200 {
        if log().contains("STS did not answer") {
            break;
        }
        assert!(
            runner.try_wait().unwrap().is_none(),
            "the runner exited while AWS was unreachable:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log().contains("STS did not answer"), "{}", log());
    proxy.up();
    let execution = world.start(&machine, "l1", &json!({})).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("served")), "{done:?}\n{}", log());
    crate::harness::sigterm(&runner);
    let status = tokio::time::timeout(Duration::from_secs(60), runner.wait())
        .await
        .expect("the runner did not stop on SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_stop_signal_kills_the_jobs_and_exits_at_once() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let world = World::new().await;
    let queue = world.fifo_queue_with("twice", 30).await;
    let pgid_file = world.tmp.path().join("pgid");
    let machine = world
        .state_machine(
            "twice",
            &native_machine(
                &queue,
                json!({"commands": [
                    format!("echo $$ > {}", pgid_file.display()),
                    "sleep 600",
                ]}),
            ),
        )
        .await;
    world.start(&machine, "t1", &json!({})).await;
    let mut runner = serve_binary(&world, &queue, &[("ATTINI_DRAIN_GRACE", "600")]);
    wait_for_file(&pgid_file).await;
    let pgid: i32 = std::fs::read_to_string(&pgid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pid = Pid::from_raw(runner.id().unwrap() as i32);
    let mut lines = BufReader::new(runner.stderr.take().unwrap()).lines();
    kill(pid, Signal::SIGTERM).unwrap();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("draining") {
            break;
        }
    }
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), runner.wait())
        .await
        .expect("no exit after the second signal")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    // The exit went through the flush: the last line is there.
    let mut last = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        last.push(line);
    }
    assert!(
        last.iter()
            .any(|l| l.contains("exiting now after the second stop signal")),
        "{last:?}"
    );
    for _ in 0..100 {
        if !group_exists(pgid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!group_exists(pgid), "the job outlived the runner");
}
