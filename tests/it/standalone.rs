//! Standalone mode end to end: real state machines with `sqs:sendMessage.waitForTaskToken`
//! on the emulator, the runner serving the queue, and the execution's final status, output,
//! error and cause as DescribeExecution reports them.

use serde_json::{Value, json};

use crate::world::*;

/// Starts a machine sending `body`, runs one execution with `input`, returns how it ended.
async fn one_job(world: &World, queue: &str, name: &str, body: Value, input: Value) -> Finished {
    let machine = world
        .state_machine(name, &native_machine(queue, body))
        .await;
    let execution = world.start(&machine, &format!("{name}-1"), &input).await;
    world.finished(&execution).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_succeed_and_fail_as_the_execution_shows() {
    let world = World::new().await;
    let queue = world.fifo_queue("jobs").await;
    let dist = world.bucket("dist").await;
    let script = "#!/bin/bash\nprintf '{\"stage\":\"%s\",\"input\":%s}' \"$STAGE\" \"$(cat \"$ATTINI_INPUT\")\" > \"$ATTINI_OUTPUT\"\n";
    world
        .put(
            &dist,
            "app/1.zip",
            zip_bytes(&[("bin/hello.sh", script, 0o755)]),
        )
        .await;
    let runner = world.serve(&queue, 5);

    let ok = one_job(
        &world,
        &queue,
        "json-output",
        json!({
            "commands": ["./bin/hello.sh"],
            "environment": {"STAGE": "dev"},
            "distribution": {"bucket": dist, "key": "app/1.zip"},
        }),
        json!({"x": 1}),
    )
    .await;
    assert_eq!(ok.status, "SUCCEEDED", "{ok:?}");
    assert_eq!(ok.output, Some(json!({"stage": "dev", "input": {"x": 1}})));

    let text = one_job(
        &world,
        &queue,
        "text-output",
        json!({"commands": ["echo plain words > $ATTINI_OUTPUT"]}),
        json!({}),
    )
    .await;
    assert_eq!(text.output, Some(json!({"result": "plain words"})));

    let failing = one_job(
        &world,
        &queue,
        "failing",
        json!({"commands": ["echo checking", "echo 'no such table' >&2", "exit 3"]}),
        json!({}),
    )
    .await;
    assert_eq!(failing.status, "FAILED");
    assert_eq!(failing.error.as_deref(), Some("ScriptExecutionError"));
    assert_eq!(
        failing.cause.as_deref(),
        Some("Script exited with code 3\nLast 2 lines of output:\nchecking\nno such table")
    );

    let slow = one_job(
        &world,
        &queue,
        "timeout",
        json!({"commands": ["sleep 600"], "timeoutSeconds": 1}),
        json!({}),
    )
    .await;
    assert_eq!(slow.error.as_deref(), Some("Runner.Timeout"));
    assert_eq!(
        slow.cause.as_deref(),
        Some("Script timed out after 1 seconds")
    );

    let missing = one_job(
        &world,
        &queue,
        "missing-dist",
        json!({
            "commands": ["true"], "distribution": {"bucket": dist, "key": "app/404.zip"},
        }),
        json!({}),
    )
    .await;
    assert_eq!(missing.error.as_deref(), Some("Job.Invalid"));
    let cause = missing.cause.unwrap();
    assert!(
        cause.contains(&format!("s3://{dist}/app/404.zip does not exist")),
        "{cause}"
    );

    let bad = one_job(
        &world,
        &queue,
        "bad-field",
        json!({"commands": ["true"], "colour": "red"}),
        json!({}),
    )
    .await;
    assert_eq!(bad.error.as_deref(), Some("Job.Invalid"));
    let cause = bad.cause.unwrap();
    assert!(
        cause.starts_with(
            "The job message is invalid: field `colour` is invalid: unknown field `colour`"
        ),
        "{cause}"
    );

    // The runner kept serving through all of that.
    let after = one_job(
        &world,
        &queue,
        "after",
        json!({"commands": ["echo '{\"still\":\"serving\"}' > $ATTINI_OUTPUT"]}),
        json!({}),
    )
    .await;
    assert_eq!(after.output, Some(json!({"still": "serving"})));
    assert_eq!(runner.stop().await, attini_runner::worker::Exit::Requested);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_jobs_through_five_slots_use_all_five_and_never_more() {
    let world = World::new().await;
    let queue = world.fifo_queue("many").await;
    let dir = world.tmp.path();
    let (running, started) = (dir.join("running"), dir.join("started"));
    std::fs::create_dir(&running).unwrap();
    std::fs::create_dir(&started).unwrap();
    let (running, started) = (running.to_str().unwrap(), started.to_str().unwrap());
    // Each job records how many jobs run while it runs. None goes on before five jobs have
    // started: a runner that used fewer than five slots leaves the first jobs waiting until
    // they fail with exit 7.
    let commands = json!([
        format!("touch {running}/$$ {started}/$$"),
        format!(
            "for i in $(seq 300); do [ $(ls {started} | wc -l) -ge 5 ] && break; sleep 0.1; done"
        ),
        format!("[ $(ls {started} | wc -l) -ge 5 ] || exit 7"),
        format!("ls {running} | wc -l > \"$ATTINI_OUTPUT\""),
        "sleep 0.3",
        format!("ls {running} | wc -l >> \"$ATTINI_OUTPUT\""),
        format!("rm {running}/$$"),
    ]);
    let machine = world
        .state_machine(
            "many",
            &native_machine(&queue, json!({"commands": commands})),
        )
        .await;
    let runner = world.serve(&queue, 5);
    let mut executions = Vec::new();
    for i in 0..20 {
        executions.push(
            world
                .start(&machine, &format!("many-{i}"), &json!({}))
                .await,
        );
    }
    let mut most_seen = 0;
    for execution in &executions {
        let done = world.finished(execution).await;
        assert_eq!(done.status, "SUCCEEDED", "{done:?}");
        let counts = done.output.unwrap()["result"].as_str().unwrap().to_string();
        for count in counts.split_whitespace() {
            most_seen = most_seen.max(count.parse::<usize>().unwrap());
        }
    }
    let stats = runner.stats.clone();
    runner.stop().await;
    assert_eq!(most_seen, 5, "the most jobs a job saw running");
    assert_eq!(stats.figures.slots.peak(), 5);
    assert_eq!(
        stats
            .figures
            .reading()
            .total("attini_runner_jobs_total", &[]),
        20.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_without_a_token_are_deleted_and_serving_goes_on() {
    let world = World::new().await;
    let queue = world.fifo_queue("junk").await;
    for (i, body) in [
        "not json at all",
        r#"{"commands": ["true"]}"#,
        r#"{"taskToken": "", "commands": 5}"#,
    ]
    .iter()
    .enumerate()
    {
        world
            .clients
            .sqs
            .send_message()
            .queue_url(&queue)
            .message_body(*body)
            .message_group_id(format!("g{i}"))
            .message_deduplication_id(format!("d{i}"))
            .send()
            .await
            .unwrap();
    }
    let runner = world.serve(&queue, 2);
    let good = one_job(
        &world,
        &queue,
        "good",
        json!({"commands": ["echo fine > $ATTINI_OUTPUT"]}),
        json!({}),
    )
    .await;
    assert_eq!(good.output, Some(json!({"result": "fine"})));
    // Visible or in flight, none of them is left.
    world.wait_until_empty(&queue).await;
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_queue_stops_the_runner_with_a_reason() {
    let world = World::new().await;
    let missing = format!(
        "{}/000000000000/no-such-queue.fifo",
        world.emulator.endpoint
    );
    let runner = world.serve(&missing, 1);
    let exit = tokio::time::timeout(std::time::Duration::from_secs(60), runner.wait())
        .await
        .expect("the runner kept polling a missing queue");
    match exit {
        attini_runner::worker::Exit::Stopped(reason) => assert!(
            reason.contains("no-such-queue.fifo cannot be used"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}
