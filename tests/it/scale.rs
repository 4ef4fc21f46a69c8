//! Scale-out: several runners on one queue, as an autoscaled ECS service runs them. Three
//! runner processes take 300 jobs; one of them is stopped with SIGTERM in the middle; every
//! job is answered exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

use crate::world::*;

const JOBS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_runners_take_300_jobs_once_each_though_one_is_stopped_midway() {
    let world = World::new().await;
    let queue = world.fifo_queue_with("scale", 10).await;
    let runs = world.tmp.path().join("runs");
    // Each run appends its input as one short line in one write (so appends do not interleave).
    let job = json!({"commands": [
        format!("printf '%s\\n' \"$(cat \"$ATTINI_INPUT\")\" >> {}", runs.display()),
        "echo '\"done\"' > $ATTINI_OUTPUT",
    ]});
    let machine = world
        .state_machine("scale", &native_machine(&queue, job))
        .await;
    // Their logs go to files: a pipe nobody reads fills up and stalls a runner's logging.
    let runners: Vec<_> = (0..3)
        .map(|i| {
            let log =
                std::fs::File::create(world.tmp.path().join(format!("runner{i}.log"))).unwrap();
            serve_binary_to(&world, &queue, &[], log)
        })
        .collect();
    let mut executions = Vec::new();
    for n in 0..JOBS {
        let execution = world
            .start(&machine, &format!("s{n}"), &json!({"n": n}))
            .await;
        executions.push(execution);
        if n == JOBS / 2 {
            // One runner is stopped while jobs flow: it drains, the others go on.
            kill(
                Pid::from_raw(runners[0].id().unwrap() as i32),
                Signal::SIGTERM,
            )
            .unwrap();
        }
    }
    for execution in &executions {
        let done = world.finished(execution).await;
        assert_eq!(done.output, Some(json!("done")), "{done:?}");
    }
    world.wait_until_empty(&queue).await;
    let mut runners = runners;
    let stopped = runners.remove(0);
    let out = tokio::time::timeout(Duration::from_secs(120), stopped.wait_with_output())
        .await
        .expect("the stopped runner did not exit")
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for mut runner in runners {
        runner.start_kill().unwrap();
    }
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for line in std::fs::read_to_string(&runs).unwrap().lines() {
        let input: serde_json::Value = serde_json::from_str(line).unwrap();
        *seen.entry(input["n"].as_u64().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), JOBS, "jobs that never ran");
    let twice: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "jobs that ran more than once: {twice:?}");
}
