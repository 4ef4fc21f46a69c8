//! Locks across runners with the binary on the emulator's DynamoDB: two runners on one queue,
//! jobs naming one lock never overlap and run in the order they arrived; a SIGKILLed holder's
//! lock passes on within its lease; a holder that cannot renew its lease ends its job before
//! the next holder starts (fencing); a job with a lock on a runner without a lock table is
//! refused, saying what to set.

use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::types::ScalarAttributeType;
use serde_json::{Value, json};

use crate::deny::{DenyingProxy, Fault};
use crate::world::*;

/// A lock table like the service stack's.
async fn lock_table(world: &World) -> String {
    world
        .table("locks", "lock", "ticket", ScalarAttributeType::N)
        .await
}

/// A runner serving `queue` with the lock table, 6 s lock leases, `max_jobs` slots, its log
/// in `log` (and `extra` variables).
fn runner(
    world: &World,
    queue: &str,
    table: &str,
    max_jobs: &str,
    log: &Path,
    extra: &[(&str, &str)],
) -> tokio::process::Child {
    let mut env = vec![
        ("ATTINI_LOCK_TABLE", table),
        ("ATTINI_LOCK_LEASE", "6"),
        ("ATTINI_MAX_CONCURRENT_JOBS", max_jobs),
    ];
    env.extend_from_slice(extra);
    serve_binary_to(world, queue, &env, std::fs::File::create(log).unwrap())
}

/// Waits (up to two minutes) until `file` holds at least `n` lines containing `text`.
async fn lines_in(file: &Path, text: &str, n: usize) {
    for _ in 0..1200 {
        let content = std::fs::read_to_string(file).unwrap_or_default();
        if content.lines().filter(|l| l.contains(text)).count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} has not {n} lines with {text:?}: {}",
        file.display(),
        std::fs::read_to_string(file).unwrap_or_default()
    );
}

/// Jobs appending `start <n>` and `end <n>` to `journal`, after `wait` (a shell command).
fn locked_job(queue: &str, lock: &str, journal: &Path, wait: &str) -> Value {
    let j = journal.display();
    let commands = json!([
        "n=$(jq -r .n \"$ATTINI_INPUT\")",
        format!("echo \"start $n\" >> {j}"),
        wait,
        format!("echo \"end $n\" >> {j}"),
    ]);
    native_machine(queue, json!({"commands": commands, "lock": lock}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_with_one_lock_never_overlap_and_run_in_arrival_order_across_two_runners() {
    let world = World::new().await;
    let queue = world.fifo_queue("locks").await;
    let table = lock_table(&world).await;
    let tmp = world.tmp.path();
    let (journal, gate) = (tmp.join("journal"), tmp.join("gate"));
    let wait = format!(
        "if [ \"$n\" = 1 ]; then while [ ! -e {} ]; do sleep 0.1; done; else sleep 0.3; fi",
        gate.display()
    );
    let machine = world
        .state_machine("locked", &locked_job(&queue, "db-orders", &journal, &wait))
        .await;
    let (log_a, log_b) = (tmp.join("a.log"), tmp.join("b.log"));
    let _a = runner(&world, &queue, &table, "2", &log_a, &[]);
    let _b = runner(&world, &queue, &table, "2", &log_b, &[]);
    let mut executions = Vec::new();
    executions.push(world.start(&machine, "n1", &json!({"n": 1})).await);
    lines_in(&journal, "start 1", 1).await;
    // Each next job arrives once the one before it waits in line.
    for n in 2..=4 {
        executions.push(
            world
                .start(&machine, &format!("n{n}"), &json!({"n": n}))
                .await,
        );
        let waiting = |log: &Path| {
            let content = std::fs::read_to_string(log).unwrap_or_default();
            content.matches("waiting for the lock").count()
        };
        for _ in 0..1200 {
            if waiting(&log_a) + waiting(&log_b) >= n - 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(waiting(&log_a) + waiting(&log_b), n - 1);
    }
    std::fs::write(&gate, "").unwrap();
    for execution in &executions {
        assert_eq!(world.finished(execution).await.status, "SUCCEEDED");
    }
    let journal = std::fs::read_to_string(&journal).unwrap();
    let expected: Vec<String> = (1..=4)
        .flat_map(|n| [format!("start {n}"), format!("end {n}")])
        .collect();
    assert_eq!(journal.lines().collect::<Vec<_>>(), expected);
    // Both runners took part: waiting jobs hold no slot.
    let took = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap()
            .matches("lock taken")
            .count()
    };
    assert_eq!(took(&log_a) + took(&log_b), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_holders_lock_passes_on_within_its_lease() {
    let world = World::new().await;
    let queue = world.fifo_queue("killed").await;
    let table = lock_table(&world).await;
    let tmp = world.tmp.path();
    let journal = tmp.join("journal");
    let wait = "if [ \"$n\" = 1 ]; then sleep 600; fi";
    let machine = world
        .state_machine("killed", &locked_job(&queue, "db-1", &journal, wait))
        .await;
    // One slot: the holder's runner takes nothing else.
    let mut holder = runner(&world, &queue, &table, "1", &tmp.join("a.log"), &[]);
    world.start(&machine, "k1", &json!({"n": 1})).await;
    lines_in(&journal, "start 1", 1).await;
    let log_b = tmp.join("b.log");
    let _next = runner(&world, &queue, &table, "1", &log_b, &[]);
    let second = world.start(&machine, "k2", &json!({"n": 2})).await;
    lines_in(&log_b, "waiting for the lock", 1).await;
    holder.start_kill().unwrap();
    holder.wait().await.unwrap();
    assert_eq!(world.finished(&second).await.status, "SUCCEEDED");
    let log = std::fs::read_to_string(&log_b).unwrap();
    assert!(log.contains("removed a lapsed entry of the lock"), "{log}");
    let journal = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(
        journal.lines().take(3).collect::<Vec<_>>(),
        ["start 1", "start 2", "end 2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_ends_its_job_before_the_next_holder_starts() {
    let world = World::new().await;
    let queue = world.fifo_queue("fenced").await;
    let table = lock_table(&world).await;
    let tmp = world.tmp.path();
    let journal = tmp.join("journal");
    let j = journal.display();
    // The holder notes when its processes are ended.
    let wait = format!(
        "if [ \"$n\" = 1 ]; then trap 'echo \"ended 1\" >> {j}; exit 143' TERM; sleep 600 & wait; fi"
    );
    let machine = world
        .state_machine("fenced", &locked_job(&queue, "db-1", &journal, &wait))
        .await;
    // The holder's runner reaches DynamoDB through a proxy that will hang its renewals.
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    let through = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let _holder = runner(&world, &queue, &table, "1", &tmp.join("a.log"), &through);
    let first = world.start(&machine, "f1", &json!({"n": 1})).await;
    lines_in(&journal, "start 1", 1).await;
    proxy.fault("DynamoDB_20120810.UpdateItem", Fault::Hang, 1000);
    let _next = runner(&world, &queue, &table, "1", &tmp.join("b.log"), &[]);
    let second = world.start(&machine, "f2", &json!({"n": 2})).await;
    assert_eq!(world.finished(&second).await.status, "SUCCEEDED");
    let done = world.finished(&first).await;
    assert_eq!(
        done.error.as_deref(),
        Some("Runner.Interrupted"),
        "{done:?}"
    );
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains("lock \"db-1\" could not be renewed in time"),
        "{cause}"
    );
    let journal = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(
        journal.lines().collect::<Vec<_>>(),
        ["start 1", "ended 1", "start 2", "end 2"],
        "the first holder ended before the second started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_a_lock_on_a_runner_without_a_lock_table_is_refused() {
    let world = World::new().await;
    let queue = world.fifo_queue("no-table").await;
    let machine = world
        .state_machine(
            "no-table",
            &native_machine(&queue, json!({"commands": ["true"], "lock": "db-1"})),
        )
        .await;
    let _runner = serve_binary(&world, &queue, &[]);
    let done = world
        .finished(&world.start(&machine, "t1", &json!({})).await)
        .await;
    assert_eq!(done.error.as_deref(), Some("Job.Invalid"), "{done:?}");
    let cause = done.cause.unwrap_or_default();
    assert!(cause.contains("set ATTINI_LOCK_TABLE"), "{cause}");
}
