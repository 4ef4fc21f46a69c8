//! A Spot interruption with the binary: SIGTERM with a 40 s stop timeout while three jobs are
//! in hand. The one expected to fit finishes and succeeds; the one expected to outlast the
//! drain grace is interrupted at once (before the short one ends); the one still preparing
//! its workspace goes back unanswered at once, and the next runner runs it.

use serde_json::{Value, json};

use crate::deny::{DenyingProxy, Fault};
use crate::harness::sigterm;
use crate::world::*;

/// The `job finished` line of the execution named `name` in `log` (by its step), its index.
fn finished_at(log: &str, marker: &str) -> usize {
    log.lines()
        .position(|l| l.contains("job finished") && l.contains(marker))
        .unwrap_or_else(|| panic!("no job finished line for {marker}: {log}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_stop_what_fits_finishes_what_does_not_is_interrupted_at_once_and_the_rest_goes_back()
{
    let world = World::new().await;
    let queue = world.fifo_queue("spot").await;
    let dist = world.bucket("dist").await;
    world
        .put(&dist, "slow.zip", zip_bytes(&[("a.txt", "a", 0o644)]))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    proxy.fault("GET slow.zip", Fault::Hang, 1);
    let tmp = world.tmp.path();
    let (gate, short_started, long_started) =
        (tmp.join("gate"), tmp.join("short"), tmp.join("long"));
    let job = |step: &str, commands: Value, extra: Value| {
        let mut body = json!({"stepName": step, "commands": commands});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        native_machine(&queue, body)
    };
    let short = job(
        "Short",
        json!([
            format!("touch {}", short_started.display()),
            format!("while [ ! -e {} ]; do sleep 0.1; done", gate.display()),
            "echo '\"short\"' > $ATTINI_OUTPUT",
        ]),
        json!({"expectedSeconds": 10}),
    );
    let long = job(
        "Long",
        json!([format!("touch {}", long_started.display()), "sleep 300"]),
        json!({"expectedSeconds": 300}),
    );
    let preparing = job(
        "Preparing",
        json!(["cat a.txt > $ATTINI_OUTPUT"]),
        json!({"distribution": {"bucket": dist, "key": "slow.zip"}}),
    );
    let log_path = tmp.join("runner.log");
    let env = [
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("ATTINI_STOP_TIMEOUT", "40"),
        ("ATTINI_KILL_GRACE", "1"),
        ("ATTINI_AWS_ATTEMPT_TIMEOUT", "600"),
        ("ATTINI_AWS_OPERATION_TIMEOUT", "600"),
    ];
    let mut runner = serve_binary_to(
        &world,
        &queue,
        &env,
        std::fs::File::create(&log_path).unwrap(),
    );
    let mut executions = Vec::new();
    for (name, definition) in [("short", short), ("long", long), ("preparing", preparing)] {
        let machine = world.state_machine(name, &definition).await;
        executions.push(world.start(&machine, name, &json!({})).await);
    }
    wait_for_file(&short_started).await;
    wait_for_file(&long_started).await;
    // The third job is preparing its workspace: its download hangs.
    let downloading = || {
        let seen = proxy.seen();
        seen.iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/slow.zip"))
    };
    for _ in 0..600 {
        if downloading() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        downloading(),
        "{}",
        std::fs::read_to_string(&log_path).unwrap()
    );

    sigterm(&runner);
    // The long job is answered while the short one still waits for its gate: at once, not
    // when the grace is over (then the short one would be interrupted too).
    let long = world.finished(&executions[1]).await;
    assert_eq!(
        long.error.as_deref(),
        Some("Runner.Interrupted"),
        "{long:?}"
    );
    let cause = long.cause.unwrap_or_default();
    let at_once = "s more, past the 34 s drain grace period, so its processes were ended at once";
    assert!(cause.contains(at_once), "{cause}");
    // The third goes back unanswered, also while the short one runs.
    for _ in 0..600 {
        if std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("job handed back")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    std::fs::write(&gate, "").unwrap();
    let (code, log) = exit_and_log(&mut runner, &log_path).await;
    assert_eq!(code, Some(0), "{log}");
    let done = world.finished(&executions[0]).await;
    assert_eq!(done.output, Some(json!("short")), "{done:?}");
    let handed_back = log.lines().position(|l| l.contains("job handed back"));
    let handed_back = handed_back.unwrap_or_else(|| panic!("nothing handed back: {log}"));
    assert!(handed_back < finished_at(&log, "Short"), "{log}");
    assert!(
        finished_at(&log, "Long") < finished_at(&log, "Short"),
        "{log}"
    );
    assert!(
        log.contains(r#""decision":"goes on""#) && log.contains(r#""expected_from":"declared""#),
        "{log}"
    );
    assert_eq!(world.status(&executions[2]).await, "RUNNING");
    // ... and the next runner runs it.
    let _next = serve_binary(&world, &queue, &[]);
    let done = world.finished(&executions[2]).await;
    assert_eq!(done.output, Some(json!({"result": "a"})), "{done:?}");
}
