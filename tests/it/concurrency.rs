//! Ten jobs at once in one engine keep their workspaces, environments and outputs apart.

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_jobs_stay_apart() {
    let h = Harness::new();
    let zip = h.path("shared.zip");
    write_zip(&zip, &[Entry::File("state.txt", b"initial\n", 0o644)]);
    let source = zip_source(&zip);
    let jobs: Vec<_> = (0..10)
        .map(|i| {
            native(json!({
                "commands": [
                    "echo \"$JOB_NO\" >> state.txt",
                    // Every job is running at this point: wait until all ten have started.
                    "touch \"$BARRIER/$JOB_NO\"; until [ \"$(ls \"$BARRIER\" | wc -l)\" -ge 10 ]; do sleep 0.02; done",
                    "printf '{\"job\":\"%s\",\"state\":\"%s\",\"input\":%s}' \"$JOB_NO\" \"$(tr '\\n' ' ' < state.txt)\" \"$(cat \"$ATTINI_INPUT\")\" > \"$ATTINI_OUTPUT\"",
                ],
                "environment": {"JOB_NO": i.to_string(), "BARRIER": h.path("barrier").to_str().unwrap()},
                "input": {"n": i},
                // Jobs run one after another would wait at the barrier until this fires.
                "timeoutSeconds": 60,
            }))
        })
        .collect();
    std::fs::create_dir(h.path("barrier")).unwrap();
    let runs = jobs.iter().map(|job| h.run(job, Some(source.clone())));
    let results = futures::future::join_all(runs).await;
    for (i, (result, _)) in results.iter().enumerate() {
        assert_eq!(
            output(result),
            json!({"job": i.to_string(), "state": format!("initial {i} "), "input": {"n": i}})
        );
    }
    assert!(h.leftover_job_dirs().await.is_empty());
}
