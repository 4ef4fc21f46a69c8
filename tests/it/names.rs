//! Failure names a plan can act on, with the real runner on the emulator: every name a native
//! job can get is produced here (`Runner.Disk` in `disk.rs`, `Runner.Interrupted` in
//! `shipped.rs` and the worker's drain test, `Runner.StaleExecution` in `attini.rs`), an Attini
//! message keeps `RuntimeError`, and the README's ready `Retry` and `Catch`, as written, retry
//! a timeout into a success and catch a failed command without running it again.

use serde_json::{Value, json};

use crate::shipped::readme_json_after;
use crate::world::*;

/// The README's `Retry` and `Catch` on the Task state of `native_machine(queue, body)`, whose
/// failures go to a `JobFailed` Pass state.
fn machine_with_readme_retry(queue: &str, body: Value) -> Value {
    let ready = readme_json_after("### Failure names");
    let mut machine = native_machine(queue, body);
    let run = &mut machine["States"]["Run"];
    // A retry must not be dropped as a duplicate: the README's Task state ids, per attempt.
    let shipped = readme_json_after("### Standalone mode");
    for id in ["MessageGroupId.$", "MessageDeduplicationId.$"] {
        run["Parameters"][id] = shipped["Greet"]["Parameters"][id].clone();
    }
    run["Retry"] = ready["Retry"].clone();
    run["Catch"] = ready["Catch"].clone();
    machine["States"]["JobFailed"] = json!({"Type": "Pass", "End": true});
    machine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_retry_retries_a_timeout_and_its_catch_takes_a_failed_command_once() {
    let world = World::new().await;
    let queue = world.fifo_queue("ready-retry").await;
    let runner = world.serve(&queue, 2);
    let mark = world.tmp.path().join("tried");
    let runs = world.tmp.path().join("runs");
    // The first attempt outlives its timeout; the retry finds the mark and passes.
    let slow_once = json!({
        "commands": [format!("if [ -e {m} ]; then echo '\"second\"' > $ATTINI_OUTPUT; else touch {m}; sleep 30; fi", m = mark.display())],
        "timeoutSeconds": 1,
    });
    let machine = world
        .state_machine("slow-once", &machine_with_readme_retry(&queue, slow_once))
        .await;
    let done = world
        .finished(&world.start(&machine, "s1", &json!({})).await)
        .await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    assert_eq!(done.output, Some(json!("second")), "{done:?}");

    let failing = json!({"commands": [format!("echo run >> {}", runs.display()), "exit 3"]});
    let machine = world
        .state_machine("failing", &machine_with_readme_retry(&queue, failing))
        .await;
    let done = world
        .finished(&world.start(&machine, "f1", &json!({})).await)
        .await;
    assert_eq!(done.status, "SUCCEEDED", "caught: {done:?}");
    let output = done.output.unwrap();
    assert_eq!(
        output["failure"]["Error"], "ScriptExecutionError",
        "{output}"
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n", "retried");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_name_a_native_job_can_get_here_is_produced() {
    let world = World::new().await;
    let queue = world.fifo_queue("names").await;
    let dist = world.bucket("dist").await;
    let denied = world.bucket("denied").await;
    let mut config = world.engine_config();
    config.tools.sam = Some("/nonexistent/sam".into());
    // The runner's role may not read one bucket nor Secrets Manager.
    let proxy = crate::deny::DenyingProxy::start(
        &world.emulator.endpoint,
        &[
            "HEAD /denied",
            "GET /denied",
            "secretsmanager.GetSecretValue",
        ],
    )
    .await;
    let clients = attini_runner::aws::Clients::for_endpoint(
        &proxy.url,
        crate::emulator::REGION,
        Default::default(),
    )
    .await;
    let runner = world.serve_through(&queue, 4, config, clients);
    let cases = [
        (
            "script",
            json!({"commands": ["exit 3"]}),
            "ScriptExecutionError",
        ),
        (
            "timeout",
            json!({"commands": ["sleep 30"], "timeoutSeconds": 1}),
            "Runner.Timeout",
        ),
        (
            "distribution",
            json!({"commands": ["true"], "distribution": {"bucket": denied, "key": "any.zip"}}),
            "Runner.Distribution",
        ),
        (
            "credentials",
            json!({"commands": ["true"], "secretEnvironment": {"X": {"secretsManager": "any"}}}),
            "Runner.Credentials",
        ),
        (
            "missing",
            json!({"commands": ["true"], "distribution": {"bucket": dist, "key": "none.zip"}}),
            "Job.Invalid",
        ),
        (
            "tool",
            json!({"kind": "sam", "properties": {"StackName": "never"}}),
            "Runner.MissingTool",
        ),
        (
            "invalid",
            json!({"commands": ["true"], "colour": "red"}),
            "Job.Invalid",
        ),
        (
            "output",
            json!({"commands": ["head -c 300000 /dev/zero | tr '\\0' x > $ATTINI_OUTPUT"]}),
            "Job.InvalidOutput",
        ),
    ];
    let mut executions = Vec::new();
    for (name, body, _) in &cases {
        let machine = world
            .state_machine(name, &native_machine(&queue, body.clone()))
            .await;
        executions.push(world.start(&machine, name, &json!({})).await);
    }
    for ((name, _, expected), execution) in cases.iter().zip(&executions) {
        let done = world.finished(execution).await;
        assert_eq!(done.error.as_deref(), Some(*expected), "{name}: {done:?}");
    }
    // The names listed for plans are the ones produced here and in the tests named above.
    let listed: Vec<&str> = attini_runner::engine::names::ALL
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    for (_, _, expected) in &cases {
        assert!(listed.contains(expected), "{expected} is not listed");
    }
    runner.stop().await;
}
