//! Memory bounds with the real binary: five Attini steps at once (five executions), each
//! writing 100 MB of lines into its log object, keep the runner's peak resident memory bounded
//! (the log object is appended to, not held and copied whole).

use std::time::Duration;

use serde_json::json;

use crate::attini::*;

/// `VmHWM` (the peak resident memory so far) of process `pid`, in MiB; `None` once it exited.
fn peak_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_jobs_of_a_hundred_megabytes_of_lines_keep_the_runner_small() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let lines = json!(["head -c 100000000 /dev/zero | tr '\\0' x | fold -w 999"]);
    // Five executions of one step each, all current: not one execution with a Parallel of
    // five, because ministack's Parallel branches share one context object, and under load two
    // branches sent the same step name and task token (the other three never went out, and
    // the execution waited for good).
    let mut executions = Vec::new();
    for i in 0..5 {
        let step = format!("Log{i}");
        let state = a.dispatcher_state(&step, lines.clone(), HASH, "dev/demo/demo.zip#v1");
        let definition = json!({"StartAt": step, "States": {step.clone(): state}});
        let machine = a
            .world
            .state_machine(&format!("logs{i}"), &definition)
            .await;
        executions.push(a.world.start(&machine, "exec-1", &json!({})).await);
    }
    a.current(&executions.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    // A long idle TTL, so that a slow machine's gaps never end the runner before the last
    // job; SIGTERM ends it once the executions are done. Its log goes to a file, told
    // on failure.
    let log_path = a.world.tmp.path().join("runner.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let runner = a
        .command("unused-start-token", "2.0.2", HASH, 600, &[])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let pid = runner.id().unwrap();
    let told = || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    let mut peak = 0;
    // Five 100 MB logs through one runner beside other tests: four minutes, within nextest's
    // five; an execution still running then is told with the runner's log.
    let done = {
        // One four-minute bound for all five, not four minutes each.
        let deadline = std::time::Instant::now() + Duration::from_secs(240);
        let finished = async {
            let mut all = Vec::new();
            for execution in &executions {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                all.push(a.world.finished_within(execution, left).await?);
            }
            Some(all)
        };
        tokio::pin!(finished);
        loop {
            if let Some(now) = peak_mib(pid) {
                peak = peak.max(now);
            }
            tokio::select! {
                done = &mut finished => break done,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    };
    let Some(done) = done else {
        panic!(
            "an execution was still RUNNING after four minutes (peak RSS {peak} MiB)\nthe runner's log:\n{}",
            told()
        );
    };
    let out = stop_with_sigterm(runner).await;
    for done in &done {
        assert_eq!(
            done.status,
            "SUCCEEDED",
            "{done:?}\nthe runner's log:\n{}",
            told()
        );
    }
    assert_eq!(out.status.code(), Some(0), "{}", told());
    for i in 0..5 {
        let key = format!("attini/deployment/logs/runner/dev/demo/{DIST_ID}/Log{i}/exec-1");
        let object = a.world.get(&a.bucket, &key).await.expect("the log object");
        let text = String::from_utf8(object).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["data"].as_str().unwrap().len(), 999, "{key}");
        let (bytes, count) = (text.len(), text.lines().count());
        // 100 MB do not fit in 64 MiB: a note says where the rest is.
        assert!(
            text.lines()
                .any(|l| l.contains("[attini-runner]") && l.contains("CloudWatch")),
            "no note that lines were left out: {key}: {bytes} bytes, {count} lines"
        );
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(bytes <= (64 << 20) + 1024, "{key}: {bytes} bytes");
        eprintln!("{key}: {bytes} bytes, {count} lines");
    }
    eprintln!("peak RSS of the runner with five 100 MB logs: {peak} MiB");
    // Holding each log whole, as the runner once did, takes 5 x 64 MiB for the buffers alone.
    assert!(peak < 200, "the runner's peak RSS was {peak} MiB");
}
