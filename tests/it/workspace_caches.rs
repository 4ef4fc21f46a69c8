//! Workspace caches with the binary on the emulator, as a state machine sends them: a job's
//! `node_modules` (from a distribution in S3) is kept after it and put back for the next job
//! with the same lock file, and the runner's log says both.

use serde_json::json;

use crate::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_runner_puts_a_jobs_node_modules_back_for_the_next_job() {
    let world = World::new().await;
    let bucket = world.bucket("apps").await;
    let app = zip_bytes(&[("package-lock.json", "lock-v1", 0o644)]);
    world.put(&bucket, "app.zip", app).await;
    let queue = world.fifo_queue("keep").await;
    // Says what node_modules held when the job started ("none" without it), then makes it.
    let job = json!({
        "commands": [
            "if [ -d node_modules ]; then found=$(cat node_modules/made); else found=none; mkdir node_modules; cat package-lock.json > node_modules/made; fi",
            r#"printf '"%s"' "$found" > $ATTINI_OUTPUT"#,
        ],
        "distribution": {"bucket": bucket, "key": "app.zip"},
        "workspaceCaches": [{"path": "node_modules", "keyFiles": ["package-lock.json"]}],
    });
    let machine = world
        .state_machine("keep", &native_machine(&queue, job))
        .await;
    let log_path = world.tmp.path().join("keep.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[], log);
    let mut outputs = Vec::new();
    for name in ["first", "second"] {
        let execution = world.start(&machine, name, &json!({})).await;
        outputs.push(world.finished(&execution).await);
    }
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let found: Vec<_> = outputs.iter().map(|done| done.output.clone()).collect();
    assert_eq!(
        found,
        [Some(json!("none")), Some(json!("lock-v1"))],
        "{outputs:?}\n{log}"
    );
    assert_eq!(log.matches("workspace cache kept").count(), 2, "{log}");
    assert_eq!(log.matches("workspace cache put back").count(), 1, "{log}");
}
