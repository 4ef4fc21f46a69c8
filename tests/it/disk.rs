//! A small disk with the real binary: the runner's work directory is an 80 MiB tmpfs in a mount
//! namespace of its own (`unshare -rm`). Distributions that fit run, one that needs evicting
//! an unused cached one runs after the eviction, one that cannot fit fails its job with
//! `Runner.Disk` naming the space needed and free, and the runner keeps serving.

use std::io::Write;

use serde_json::json;

use crate::world::*;

/// A zip of one file of `mib` MiB of zeros (a few KiB compressed).
fn zeros_zip(mib: usize) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("zeros.bin", options).unwrap();
    let block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        zip.write_all(&block).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The serve binary with its work directory on a `size` tmpfs of its own.
pub fn serve_on_tmpfs(
    world: &World,
    queue: &str,
    size: &str,
    log: std::fs::File,
) -> tokio::process::Child {
    let inner = serve_command(world, queue, &[]);
    let inner = inner.as_std();
    let script = format!(
        r#"mkdir -p "$ATTINI_WORK_DIR" && mount -t tmpfs -o size={size} tmpfs "$ATTINI_WORK_DIR" && exec "$@""#
    );
    let mut command = tokio::process::Command::new("unshare");
    command.args(["-rm", "sh", "-c", &script, "sh"]);
    command.arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("unshare (util-linux) runs the runner in a mount namespace")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_that_does_not_fit_fails_its_job_and_the_runner_keeps_serving() {
    let world = World::new().await;
    let queue = world.fifo_queue("disk").await;
    let dist = world.bucket("dist").await;
    for (key, mib) in [("a.zip", 24), ("b.zip", 24), ("big.zip", 90)] {
        world.put(&dist, key, zeros_zip(mib)).await;
    }
    world
        .put(&dist, "small.zip", zip_bytes(&[("hello.txt", "hi", 0o644)]))
        .await;
    let log_path = world.tmp.path().join("runner.log");
    let mut runner = serve_on_tmpfs(
        &world,
        &queue,
        "80m",
        std::fs::File::create(&log_path).unwrap(),
    );
    let machine = world
        .state_machine(
            "disk",
            &native_machine(
                &queue,
                json!({"commands": ["ls -l"], "distribution": {"bucket": dist, "key.$": "$.key"}}),
            ),
        )
        .await;
    let mut outcomes = Vec::new();
    for (name, key) in [
        ("a", "a.zip"),
        ("b", "b.zip"),
        ("big", "big.zip"),
        ("small", "small.zip"),
    ] {
        let execution = world.start(&machine, name, &json!({"key": key})).await;
        outcomes.push(world.finished(&execution).await);
    }
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let statuses: Vec<&str> = outcomes.iter().map(|o| o.status.as_str()).collect();
    // The second 24 MiB distribution fits only once the first (and its spare) are evicted.
    assert_eq!(
        statuses,
        ["SUCCEEDED", "SUCCEEDED", "FAILED", "SUCCEEDED"],
        "{outcomes:#?}\n{log}"
    );
    let big = &outcomes[2];
    assert_eq!(big.error.as_deref(), Some("Runner.Disk"));
    let cause = big.cause.as_deref().unwrap_or_default();
    assert!(
        cause.contains(
            "not enough disk space for the distribution's unpacked files: it needs 90.0 MiB"
        ),
        "{cause}"
    );
    assert!(cause.contains("MiB free"), "{cause}");
    assert!(
        log.contains("evicting unused cached distributions"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_without_room_for_a_workspace_fails_the_start_check_with_status_3() {
    let world = World::new().await;
    let queue = world.fifo_queue("no-room").await;
    let log_path = world.tmp.path().join("runner.log");
    let mut runner = serve_on_tmpfs(
        &world,
        &queue,
        "8m",
        std::fs::File::create(&log_path).unwrap(),
    );
    let (code, log) = exit_and_log(&mut runner, &log_path).await;
    assert_eq!(code, Some(3), "{log}");
    assert!(
        log.contains("start check: the work directory's volume has"),
        "{log}"
    );
}
