//! Tool caches seeded from S3 at a cold start, with the binary on the emulator: the first job
//! naming a seeded cache finds the seed's files in its home; a seed that is not there is a
//! warning, and the job still runs, with an empty cache.

use serde_json::json;

use crate::world::*;

/// The first job naming the npm cache says what `~/.npm/seeded` holds (`"none"` without it);
/// with the runner's log.
async fn first_job_with_seed(world: &World, name: &str, seed: &str) -> (serde_json::Value, String) {
    let queue = world.fifo_queue(name).await;
    let job = json!({
        "commands": ["if [ -f ~/.npm/seeded ]; then printf '\"%s\"' \"$(cat ~/.npm/seeded)\"; else echo '\"none\"'; fi > $ATTINI_OUTPUT"],
        "caches": ["npm"],
    });
    let machine = world
        .state_machine(name, &native_machine(&queue, job))
        .await;
    let log_path = world.tmp.path().join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut runner = serve_binary_to(world, &queue, &[("ATTINI_TOOL_CACHE_SEED", seed)], log);
    let execution = world.start(&machine, "first", &json!({})).await;
    let done = world.finished(&execution).await;
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    (
        done.output
            .clone()
            .unwrap_or_else(|| panic!("{done:?}\n{log}")),
        log,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_job_naming_a_seeded_cache_finds_the_seed() {
    let world = World::new().await;
    let bucket = world.bucket("seeds").await;
    let zip = zip_bytes(&[(".npm/seeded", "from-s3", 0o644)]);
    world.put(&bucket, "caches/npm.zip", zip).await;
    let seed = format!("s3://{bucket}/caches/npm.zip");
    let (output, log) = first_job_with_seed(&world, "seeded", &seed).await;
    assert_eq!(output, json!("from-s3"), "{log}");
    assert_eq!(log.matches("tool caches seeded").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_seed_is_a_warning_and_the_job_runs_with_an_empty_cache() {
    let world = World::new().await;
    let bucket = world.bucket("no-seeds").await;
    let seed = format!("s3://{bucket}/caches/missing.zip");
    let (output, log) = first_job_with_seed(&world, "unseeded", &seed).await;
    assert_eq!(output, json!("none"), "{log}");
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not seed the tool caches"))
        .collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains(&seed) && warned[0].contains("does not exist"),
        "{}",
        warned[0]
    );
}
