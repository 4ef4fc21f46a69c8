//! What real AWS does that the emulators do not, through the fault proxy: a report slower than
//! the visibility window with a second runner waiting, a receive and a report that never
//! answer, a report refused as a closed token, a report denied while a permission propagates, hung and slow visibility extensions, a
//! distribution download that breaks off, one that never ends, and a bucket that denies every
//! read (the runner takes itself out).

use std::time::Duration;

use serde_json::json;

use crate::deny::{DenyingProxy, Fault};
use crate::world::*;

const SUCCESS: &str = "AWSStepFunctions.SendTaskSuccess";

/// Waits (up to a minute) until `condition` holds.
pub async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..600 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_slower_than_the_visibility_window_keeps_the_job_to_one_run() {
    let world = World::new().await;
    let queue = world.fifo_queue_with("slow-report", 3).await;
    let runs = world.tmp.path().join("runs");
    let job = json!({"commands": [format!("echo run >> {}", runs.display()), "echo '\"once\"' > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("slow-report", &native_machine(&queue, job))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    // The report takes 10 s: more than three 3 s visibility windows.
    proxy.fault(SUCCESS, Fault::Delay(Duration::from_secs(10)), 1);
    let mut first = serve_binary(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)]);
    let execution = world.start(&machine, "r1", &json!({})).await;
    until("the report is on its way", || proxy.count(SUCCESS) == 1).await;
    let mut second = serve_binary(&world, &queue, &[]);
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("once")), "{done:?}");
    world.wait_until_empty(&queue).await;
    first.start_kill().unwrap();
    second.start_kill().unwrap();
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        "run\n",
        "the job ran twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_and_a_report_that_never_answer_are_ridden_out() {
    let world = World::new().await;
    let queue = world.fifo_queue("hangs").await;
    let job = json!({"commands": ["echo '\"recovered\"' > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("hangs", &native_machine(&queue, job))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    proxy.fault("AmazonSQS.ReceiveMessage", Fault::Hang, 1);
    proxy.fault(SUCCESS, Fault::Hang, 1);
    let env = [
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("ATTINI_AWS_ATTEMPT_TIMEOUT", "2"),
    ];
    let mut runner = serve_binary(&world, &queue, &env);
    let execution = world.start(&machine, "h1", &json!({})).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("recovered")), "{done:?}");
    runner.start_kill().unwrap();
    assert!(proxy.count("AmazonSQS.ReceiveMessage") >= 2);
    assert_eq!(
        proxy.count(SUCCESS),
        2,
        "the hung report was not tried again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_refused_as_a_closed_token_deletes_the_message_after_one_attempt() {
    let world = World::new().await;
    let queue = world.fifo_queue("closed").await;
    let job = json!({"commands": ["true"]});
    let machine = world
        .state_machine("closed", &native_machine(&queue, job))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    proxy.fault(SUCCESS, Fault::Error(400, "TaskTimedOut"), 1);
    let mut runner = serve_binary(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)]);
    world.start(&machine, "c1", &json!({})).await;
    until("the report was sent", || proxy.count(SUCCESS) == 1).await;
    world.wait_until_empty(&queue).await;
    runner.start_kill().unwrap();
    assert_eq!(proxy.count(SUCCESS), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_denied_until_the_permission_propagates_is_delivered_and_the_job_runs_once() {
    let world = World::new().await;
    let queue = world.fifo_queue("denied-report").await;
    let runs = world.tmp.path().join("runs");
    let job = json!({"commands": [format!("echo run >> {}", runs.display()), "echo '\"answered\"' > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("denied-report", &native_machine(&queue, job))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    proxy.fault(SUCCESS, Fault::Error(400, "AccessDeniedException"), 3);
    let log_path = world.tmp.path().join("runner.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)], log);
    let execution = world.start(&machine, "d1", &json!({})).await;
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("answered")), "{done:?}");
    world.wait_until_empty(&queue).await;
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    assert_eq!(proxy.count(SUCCESS), 4);
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let told = log
        .lines()
        .filter(|l| l.contains("needs states:SendTaskSuccess"))
        .count();
    assert_eq!(
        told, 1,
        "the denial is logged once, naming the permission:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_and_slow_visibility_extensions_keep_the_job_to_one_run() {
    let world = World::new().await;
    // A 10 s window: beats every 3.3 s, each extension bounded to 1.7 s.
    let queue = world.fifo_queue_with("hung-extend", 10).await;
    let runs = world.tmp.path().join("runs");
    let job = json!({"commands": [
        format!("echo run >> {}", runs.display()),
        "sleep 14",
        "echo '\"once\"' > $ATTINI_OUTPUT",
    ]});
    let machine = world
        .state_machine("hung-extend", &native_machine(&queue, job))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    let batch = "AmazonSQS.ChangeMessageVisibilityBatch";
    // Two extensions never answer, a third answers after 5 s: together longer than the window.
    proxy.fault(batch, Fault::Hang, 2);
    proxy.fault(batch, Fault::Delay(Duration::from_secs(5)), 1);
    let mut first = serve_binary(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)]);
    let execution = world.start(&machine, "e1", &json!({})).await;
    until("the job started", || runs.exists()).await;
    let mut second = serve_binary(&world, &queue, &[]);
    let done = world.finished(&execution).await;
    assert_eq!(done.output, Some(json!("once")), "{done:?}");
    world.wait_until_empty(&queue).await;
    first.start_kill().unwrap();
    second.start_kill().unwrap();
    assert!(proxy.count(batch) >= 4, "{} extensions", proxy.count(batch));
    assert_eq!(
        std::fs::read_to_string(&runs).unwrap(),
        "run\n",
        "the job ran twice"
    );
}

/// A stored (uncompressed) zip of one file of `len` bytes that do not compress; and the
/// file's SHA-256 in hex.
fn noise_zip(len: usize) -> (Vec<u8>, String) {
    use sha2::Digest;
    use std::io::Write;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let hash = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("noise.bin", options).unwrap();
    zip.write_all(&data).unwrap();
    (zip.finish().unwrap().into_inner(), hash)
}

/// A world whose queue's machine `name` runs `command` in the distribution `key` (holding
/// `zip`), and a fault proxy in front of its emulator.
async fn distribution_job(
    name: &str,
    key: &str,
    zip: Vec<u8>,
    command: &str,
) -> (World, String, String, DenyingProxy) {
    let world = World::new().await;
    let queue = world.fifo_queue(name).await;
    let dist = world.bucket("dist").await;
    world.put(&dist, key, zip).await;
    let job = json!({"commands": [command], "distribution": {"bucket": dist, "key": key}});
    let machine = world
        .state_machine(name, &native_machine(&queue, job))
        .await;
    let proxy = DenyingProxy::start(&world.emulator.endpoint, &[]).await;
    (world, queue, machine, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_breaks_off_is_resumed_where_it_stopped() {
    let (zip, hash) = noise_zip(3 << 20);
    let command = "sha256sum noise.bin | cut -c1-64 > $ATTINI_OUTPUT";
    let (world, queue, machine, proxy) =
        distribution_job("broken-download", "noise.zip", zip, command).await;
    // Twice the body stops after 1 MiB and the connection drops.
    proxy.fault("GET noise.zip", Fault::CutAfter(1 << 20), 2);
    let log_path = world.tmp.path().join("runner.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[("AWS_ENDPOINT_URL", &proxy.url)], log);
    let execution = world.start(&machine, "b1", &json!({})).await;
    let done = world.finished(&execution).await;
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(
        done.output,
        Some(json!({"result": hash})),
        "{done:?}\n{log}"
    );
    let gets: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("noise.zip") && r.status != 0)
        .collect();
    // Two cut off, one that finished.
    assert_eq!(gets.len(), 3, "{gets:?}");
    let resumed = log
        .lines()
        .filter(|l| l.contains("broke off; resuming where it stopped"))
        .count();
    assert_eq!(resumed, 2, "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_never_ends_fails_its_job_at_the_workspace_timeout() {
    let zip = zip_bytes(&[("a.txt", "a", 0o644)]);
    let command = "cat a.txt > $ATTINI_OUTPUT";
    let (world, queue, machine, proxy) =
        distribution_job("hung-download", "app.zip", zip, command).await;
    proxy.fault("GET app.zip", Fault::Hang, 1);
    let env = [
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("ATTINI_WORKSPACE_TIMEOUT", "10"),
        ("ATTINI_AWS_ATTEMPT_TIMEOUT", "60"),
        ("ATTINI_AWS_OPERATION_TIMEOUT", "120"),
    ];
    let mut runner = serve_binary(&world, &queue, &env);
    let hung = world.start(&machine, "h1", &json!({})).await;
    let done = world.finished(&hung).await;
    assert_eq!(
        done.error.as_deref(),
        Some("Runner.Distribution"),
        "{done:?}"
    );
    let cause = done.cause.unwrap_or_default();
    assert!(
        cause.contains("took longer than 10 s (ATTINI_WORKSPACE_TIMEOUT)"),
        "{cause}"
    );
    // The runner goes on: the next job's download answers.
    let next = world.start(&machine, "h2", &json!({})).await;
    assert_eq!(
        world.finished(&next).await.output,
        Some(json!({"result": "a"}))
    );
    runner.start_kill().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_denies_every_read_takes_the_runner_out_after_three_jobs() {
    let world = World::new().await;
    let queue = world.fifo_queue("broken").await;
    let dist = world.bucket("denied").await;
    world
        .put(&dist, "app.zip", zip_bytes(&[("a.txt", "a", 0o644)]))
        .await;
    let job = json!({"commands": ["true"], "distribution": {"bucket": dist, "key": "app.zip"}});
    let machine = world
        .state_machine("broken", &native_machine(&queue, job))
        .await;
    let mut executions = Vec::new();
    for n in 0..8 {
        executions.push(world.start(&machine, &format!("b{n}"), &json!({})).await);
    }
    // The runner's role may not read the distributions' bucket.
    let proxy =
        DenyingProxy::start(&world.emulator.endpoint, &["HEAD /denied", "GET /denied"]).await;
    let env = [
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("ATTINI_MAX_RUNNER_FAILURES", "3"),
        ("ATTINI_MAX_CONCURRENT_JOBS", "1"),
    ];
    let log_path = world.tmp.path().join("runner.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &env, log);
    let (code, log) = exit_and_log(&mut runner, &log_path).await;
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("3 jobs in a row failed on its side"), "{log}");
    let mut failed = Vec::new();
    for execution in &executions {
        if world.status(execution).await == "FAILED" {
            failed.push(world.finished(execution).await);
        }
    }
    assert_eq!(
        failed.len(),
        3,
        "the runner failed other than its limit: {failed:?}"
    );
    for done in &failed {
        assert_eq!(
            done.error.as_deref(),
            Some("Runner.Distribution"),
            "{done:?}"
        );
    }
    assert_eq!(
        world.messages_left(&queue).await,
        5,
        "the rest were handed back"
    );
}
