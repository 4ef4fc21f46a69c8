//! No process of a job survives it: timeout, SIGTERM-ignoring children, background processes
//! of jobs that ended normally, and processes that left the job's process group.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn timeout_kills_the_whole_tree_including_grandchildren() {
    let h = Harness::new();
    let job = native(json!({
        "commands": [
            "sleep 1000 & echo bg=$!",
            "bash -c 'sleep 1000 & echo grandchild=$!; wait' &",
            "echo pgid=$$",
            "sleep 1000",
        ],
        "timeoutSeconds": 1,
    }));
    let (result, lines) = h.run(&job, None).await;
    let (error, cause) = failure(&result);
    assert_eq!(error, "Runner.Timeout");
    assert!(
        cause.starts_with("Script timed out after 1 seconds"),
        "{cause}"
    );
    let execution = result.execution.as_ref().unwrap();
    assert_eq!(printed(&lines, "pgid"), execution.pgid);
    assert!(
        !group_exists(execution.pgid),
        "process group {} still has members",
        execution.pgid
    );
    assert!(!exists(printed(&lines, "bg")));
    assert!(!exists(printed(&lines, "grandchild")));
    assert!(h.leftover_job_dirs().await.is_empty());
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace() {
    let h = Harness::new();
    // A polite child notes SIGTERM in a file: the sweep asks before it kills.
    let polite = h.path("polite-got-term");
    let job = native(json!({
        "commands": [
            "bash -c 'trap \"\" TERM; echo stubborn=$$; while true; do sleep 0.1; done' &",
            format!("bash -c 'trap \"echo TERM > {}; exit 0\" TERM; while true; do sleep 0.1; done' &", polite.display()),
            "trap 'echo main got TERM' TERM",
            "while true; do sleep 0.1; done",
        ],
        "timeoutSeconds": 1,
    }));
    let (result, lines) = h.run(&job, None).await;
    assert_eq!(
        std::fs::read_to_string(&polite).unwrap_or_default(),
        "TERM\n",
        "the job's processes got no SIGTERM before SIGKILL"
    );
    let (_, cause) = failure(&result);
    assert!(cause.contains("were killed with SIGKILL"), "{cause}");
    let execution = result.execution.as_ref().unwrap();
    assert!(execution.sweep.killed >= 1, "{:?}", execution.sweep);
    assert_eq!(execution.sweep.survivors, 0);
    assert!(!exists(printed(&lines, "stubborn")));
    assert!(!group_exists(execution.pgid));
}

#[tokio::test]
async fn background_processes_do_not_outlive_a_job_that_succeeded() {
    let h = Harness::new();
    let job =
        native(json!({"commands": ["sleep 1000 & echo bg=$!", "echo done > \"$ATTINI_OUTPUT\""]}));
    let (result, lines) = h.run(&job, None).await;
    assert_eq!(output(&result), json!({"result": "done"}));
    let execution = result.execution.as_ref().unwrap();
    assert_eq!(execution.sweep.found, 1);
    assert!(!exists(printed(&lines, "bg")));
    assert!(!group_exists(execution.pgid));
}

#[tokio::test]
async fn processes_that_left_the_group_are_found_by_their_marker() {
    let h = Harness::new();
    let job = native(json!({"commands": [
        "setsid bash -c 'echo daemon=$$; touch ready; exec sleep 1000' &",
        "until [ -e ready ]; do sleep 0.05; done",
    ]}));
    let (result, lines) = h.run(&job, None).await;
    assert!(result.report.is_success(), "{:?}", result.report);
    let daemon = printed(&lines, "daemon");
    assert!(
        !exists(daemon),
        "the setsid daemon {daemon} survived its job: {:?} {:?} sweep {:?}",
        std::fs::read_to_string(format!("/proc/{daemon}/stat")),
        std::fs::read(format!("/proc/{daemon}/environ")).map(|e| e.len()),
        result.execution.as_ref().map(|e| e.sweep.clone())
    );
}

/// A process that left the group with an empty environment (`setsid env -i`) shows no marker.
/// The sweep reads it again for a moment (it could be in the middle of `exec`), then takes it
/// for not the job's, and the job ends: it escapes the sweep, as the README says. The job
/// waits until the process is `sleep` (it has left the group and cleared its environment;
/// before that the sweep would rightly find it), and the test ends it.
#[tokio::test]
async fn a_process_without_environment_that_left_the_group_stalls_no_sweep() {
    let h = Harness::new();
    let job = native(json!({"commands": [
        "setsid env -i sleep 1000 >/dev/null 2>&1 & p=$!",
        "until [ \"$(cat /proc/$p/comm)\" = sleep ]; do sleep 0.01; done; echo escaped=$p",
    ]}));
    let (result, lines) = h.run(&job, None).await;
    let escaped = printed(&lines, "escaped");
    let still_there = exists(escaped);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(escaped),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(result.report.is_success(), "{:?}", result.report);
    assert!(
        still_there,
        "the process without a marker was found after all"
    );
}

#[tokio::test]
async fn output_held_open_by_a_background_process_does_not_hang_the_job() {
    let h = Harness::new();
    let job = native(json!({"commands": ["(sleep 1000; echo late) &", "echo quick"]}));
    let (result, lines) = h.run(&job, None).await;
    assert!(result.report.is_success());
    assert_eq!(lines, ["quick"]);
}

/// One runtime thread runs the runner, its ops server and the test: a job that makes its
/// progress file a FIFO, or a link to `/dev/zero`, must stall none of them (the file is read
/// only if it is a regular file, without waiting, and bounded).
#[tokio::test]
async fn a_progress_file_turned_into_a_fifo_or_a_link_stalls_nothing() {
    use serde_json::json;
    let world = crate::world::World::new().await;
    let queue = world.fifo_queue("progress-tricks").await;
    let runner = world.serve(&queue, 3);
    let server = attini_runner::ops::OpsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let ops = tokio::spawn(server.serve(runner.stats.clone(), stop.clone()));
    let job = json!({"commands": ["echo '\"done\"' > $ATTINI_OUTPUT", "eval \"$TRICK\" && sleep 3"], "environment": {"TRICK.$": "$.trick"}});
    let machine = world
        .state_machine(
            "progress-tricks",
            &crate::world::native_machine(&queue, job),
        )
        .await;
    let mut executions = Vec::new();
    for (name, trick) in [
        ("fifo", "rm -f ../progress && mkfifo ../progress"),
        ("link", "rm -f ../progress && ln -s /dev/zero ../progress"),
    ] {
        executions.push(world.start(&machine, name, &json!({"trick": trick})).await);
    }
    // Both jobs are at their second command (the trick is played) when their ops views say so.
    let url = format!("http://{addr}/jobs");
    let listed = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            let jobs: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
            let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
            if jobs.len() == 2 && runner.stats.board.jobs().len() == 2 {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                return reqwest::get(&url).await.unwrap().status();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("/jobs did not answer while the jobs played their tricks");
    assert_eq!(listed, 200);
    for execution in &executions {
        let done = world.finished(execution).await;
        assert_eq!(done.output, Some(json!("done")), "{done:?}");
    }
    stop.cancel();
    ops.await.unwrap();
    runner.stop().await;
}
