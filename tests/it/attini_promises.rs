//! More of what the README promises in Attini mode, each with the real binary: ECS stopping
//! the task, the startup-command timeout, a bad setting reported to the start token, the
//! distribution cache keyed by `objectIdentifier`, the job log synced while the job runs, a
//! log upload the role may not make, and the idle TTL counted from the last job.

use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;

use crate::attini::*;
use crate::deny::DenyingProxy;
use crate::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_ecs_stops_the_task_messages_are_left_in_the_queue() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let machine = a.machine("plan", "Step", json!(["true"]), HASH).await;
    let execution = a.world.start(&machine, "e1", &json!({})).await;
    a.current(&[&execution]).await;
    let stopping = serve_metadata_with(&a.task_arn, "STOPPED").await;
    let out = a
        .run_runner_with(
            "unused-start-token",
            "2.0.2",
            HASH,
            2,
            &[("ECS_CONTAINER_METADATA_URI_V4", &stopping)],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ECS is stopping this task"),
        "{}",
        stderr(&out)
    );
    assert_eq!(a.world.status(&execution).await, "RUNNING");
    assert_eq!(a.world.messages_left(&a.queue).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_commands_time_out_and_bad_settings_are_reported_to_the_start_token() {
    let a = Attini::new().await;
    let sleepy = AttributeValue::L(vec![AttributeValue::S("sleep 30".into())]);
    a.runner_item(&a.task_arn, vec![("startupCommands", sleepy)])
        .await;
    let (token, starter) = a.start_token().await;
    let timeout = [
        ("ATTINI_STARTUP_COMMANDS_TIMEOUT", "1"),
        ("ATTINI_KILL_GRACE", "1"),
    ];
    let out = a.run_runner_with(&token, "2.0.2", HASH, 60, &timeout).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let done = a.world.finished(&starter).await;
    assert_eq!(done.error.as_deref(), Some("Startup tasks failed"));
    let cause = done.cause.unwrap();
    assert!(
        cause.starts_with("Script timed out after 1 seconds."),
        "{cause}"
    );

    let (token, starter) = a.start_token().await;
    let out = a
        .run_runner_with(&token, "2.0.2", HASH, 60, &[("ATTINI_JOB_TIMEOUT", "soon")])
        .await;
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    let done = a.world.finished(&starter).await;
    assert_eq!(done.error.as_deref(), Some("Startup tasks failed"));
    assert_eq!(
        done.cause.as_deref(),
        Some(
            "Bad runner configuration: ATTINI_JOB_TIMEOUT=\"soon\" is not valid: a whole number from 1 to 31536000"
        )
    );

    // Startup commands that cannot start (an environment name past the kernel's 128 KiB for
    // one variable): their own cause, not a stop signal's.
    let huge = AttributeValue::S("e".repeat(200 * 1024));
    let commands = AttributeValue::L(vec![AttributeValue::S("true".into())]);
    a.runner_item(
        &a.task_arn,
        vec![("startupCommands", commands), ("environment", huge)],
    )
    .await;
    let (token, starter) = a.start_token().await;
    let out = a.run_runner(&token, "2.0.2", HASH, 60).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let done = a.world.finished(&starter).await;
    assert_eq!(done.error.as_deref(), Some("Startup tasks failed"));
    let cause = done.cause.unwrap();
    assert!(
        cause.starts_with("Startup commands failed: ")
            && cause.contains("more than the kernel allows"),
        "{cause}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_distribution_cache_is_keyed_by_object_identifier() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    let key = format!("{PREFIX}/demo.zip");
    let version = |content: &'static str| zip_bytes(&[("x.txt", content, 0o644)]);
    a.world.put(&a.bucket, &key, version("one")).await;
    let read = json!(["cat x.txt > $ATTINI_OUTPUT"]);
    let v1 = a
        .machine_for("v1", "Read", read.clone(), HASH, "dev/demo/demo.zip#v1")
        .await;
    let v2 = a
        .machine_for("v2", "Read", read, HASH, "dev/demo/demo.zip#v2")
        .await;
    // No current-deployment record: every execution counts as current.
    let result = |done: Finished| done.output.unwrap()["output"]["Read"]["result"].clone();
    // A long idle TTL, so that a slow machine's gaps between the jobs never end the runner;
    // SIGTERM ends it once the three jobs are answered.
    let runner = a
        .command("unused-start-token", "2.0.2", HASH, 600, &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = a.world.start(&v1, "first", &json!({})).await;
    let first = a.world.finished(&first).await;
    // The object changes; its old identifier still names the cached content.
    a.world.put(&a.bucket, &key, version("two")).await;
    let again = a.world.start(&v1, "again", &json!({})).await;
    let again = a.world.finished(&again).await;
    let newer = a.world.start(&v2, "newer", &json!({})).await;
    let newer = a.world.finished(&newer).await;
    let (first, again, newer) = (result(first), result(again), result(newer));
    let out = stop_with_sigterm(runner).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        (first, again, newer),
        (json!("one"), json!("one"), json!("two"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_log_is_synced_while_the_job_runs() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let go = a.world.tmp.path().join("go");
    let commands = json!([
        "echo first",
        format!(
            "for i in $(seq 1200); do [ -e {} ] && break; sleep 0.1; done",
            go.display()
        ),
        "echo second",
    ]);
    let machine = a.machine("plan", "Logged", commands, HASH).await;
    let execution = a.world.start(&machine, "exec-1", &json!({})).await;
    a.current(&[&execution]).await;
    let key = format!(
        "attini/deployment/logs/runner/dev/demo/{DIST_ID}/Logged/{}",
        "exec-1"
    );
    // Watched through a proxy: what the runner sent, and when.
    let proxy = DenyingProxy::start(&a.world.emulator.endpoint, &[]).await;
    let endpoint = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let runner = a.run_runner_with("unused-start-token", "2.0.2", HASH, 2, &endpoint);
    let log_puts = || {
        proxy
            .seen()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with(&key) && r.status == 200)
            .map(|r| r.body)
            .collect::<Vec<_>>()
    };
    let watch = async {
        let started = std::time::Instant::now();
        for _ in 0..600 {
            if !log_puts().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A figure for the record, not an assertion.
        eprintln!(
            "first sync {:?} after the test began watching",
            started.elapsed()
        );
        let running = a.world.status(&execution).await == "RUNNING";
        let first = log_puts().first().cloned();
        std::fs::write(&go, "").unwrap();
        (first, running)
    };
    let (out, (first, running)) = tokio::join!(runner, watch);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let first = first.unwrap_or_else(|| panic!("no log sync while the job ran: {}", stderr(&out)));
    assert!(
        running,
        "the job was not running when its log was first synced"
    );
    assert!(
        first.contains("\"data\":\"first\"") && !first.contains("second"),
        "{first}"
    );
    let last = log_puts().last().cloned().unwrap();
    assert_eq!(last.lines().count(), 2, "{last}");
    assert!(last.contains("\"data\":\"second\""), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_upload_the_role_may_not_make_does_not_fail_the_job() {
    let a = Attini::new().await;
    let execution = a
        .one_step(
            "Step",
            json!(["echo hello", "echo '\"done\"' > $ATTINI_OUTPUT"]),
        )
        .await;
    let proxy = DenyingProxy::start(
        &a.world.emulator.endpoint,
        &["PUT /attini/deployment/logs/"],
    )
    .await;
    let out = a.run_through(&proxy.url).await;
    let done = a.world.finished(&execution).await;
    assert_eq!(done.output.unwrap()["output"]["Step"], json!("done"));
    assert!(
        stderr(&out).contains("could not sync the job log"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_ttl_is_counted_from_the_end_of_the_last_job() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let ended = a.world.tmp.path().join("ended");
    // The job runs longer than the TTL: a TTL counted from its start would end the runner
    // while it runs.
    let commands = json!(["sleep 4", format!("date +%s%3N > {}", ended.display())]);
    let machine = a.machine("plan", "Long", commands, HASH).await;
    let execution = a.world.start(&machine, "exec-1", &json!({})).await;
    a.current(&[&execution]).await;
    let out = a.run_runner("unused-start-token", "2.0.2", HASH, 3).await;
    let exited = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = a.world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let ended: u128 = std::fs::read_to_string(&ended)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A lower bound the runner cannot beat however fast the machine: it may not exit before
    // the TTL has passed since the job ended (less a little for the clock's grain).
    assert!(
        exited >= ended + 2_900,
        "exited {} ms after the job ended",
        exited - ended
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_startup_commands_ends_them_and_answers_runner_interrupted() {
    let a = Attini::new().await;
    let started = a.world.tmp.path().join("startup-started");
    let commands = AttributeValue::L(vec![
        AttributeValue::S(format!("touch {}", started.display())),
        AttributeValue::S("sleep 60".into()),
    ]);
    a.runner_item(&a.task_arn, vec![("startupCommands", commands)])
        .await;
    let (token, starter) = a.start_token().await;
    let mut cmd = a.command(&token, "2.0.2", HASH, 60, &[("ATTINI_KILL_GRACE", "1")]);
    let runner = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&started).await;
    let out = stop_with_sigterm(runner).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let done = a.world.finished(&starter).await;
    assert_eq!(done.error.as_deref(), Some("Runner.Interrupted"));
    let cause = done.cause.unwrap();
    assert!(
        cause.starts_with("The runner was stopped while its startup commands ran"),
        "{cause}"
    );
}
