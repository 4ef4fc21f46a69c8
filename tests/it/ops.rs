//! The ops server of the runner binary, asked over real HTTP while it serves a real state
//! machine on the emulator: readiness turns 503 when a drain starts while liveness stays 200
//! until the process exits; `/jobs` shows a running job (its command index) and no secret of
//! it; `/metrics` parses as OpenMetrics (the Prometheus client's strict parser) and counts the
//! jobs run; `attini-runner healthcheck` exits 0 and 1 in the right cases; a taken address
//! is a clear error.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::harness::{assert_exit, free_port, sigterm};
use crate::world::*;

const BIN: &str = env!("CARGO_BIN_EXE_attini-runner");
const SECRET: &str = "s3cr3t-Password-x9";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GET `path`: the status and body; `None` when nothing listens or no whole answer came
/// within the client's 10 s (a connection that waited for a free slot, say).
async fn get_path(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let response = http()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Asks `path` until it answers `status` (up to a minute); returns the body.
async fn until_status(addr: SocketAddr, path: &str, status: u16) -> String {
    let mut last = None;
    for _ in 0..600 {
        last = get_path(addr, path).await;
        if let Some((code, body)) = &last
            && *code == status
        {
            return body.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never answered {status}; last: {last:?}");
}

/// The runner binary serving `queue`, its ops server on a free loopback port.
fn runner(
    world: &World,
    queue: &str,
    extra: &[(&str, &str)],
) -> (tokio::process::Child, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log = std::fs::File::create(world.tmp.path().join(format!("runner-{}.log", addr.port())))
        .unwrap();
    let addr_text = addr.to_string();
    let mut env = vec![("ATTINI_OPS_ADDR", addr_text.as_str())];
    env.extend_from_slice(extra);
    (serve_binary_to(world, queue, &env, log), addr)
}

/// A three-command job with a secret whose second command waits until `release` exists
/// (after writing `started`).
fn held_job(world: &World) -> (Value, std::path::PathBuf, std::path::PathBuf) {
    let started = world.tmp.path().join("started");
    let release = world.tmp.path().join("release");
    let wait = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.1; done",
        started.display(),
        release.display()
    );
    let body = json!({
        "stepName": "HeldStep",
        "secretEnvironment": {"DB_PASSWORD": SECRET},
        "commands": ["echo first", wait, "echo '{\"done\": true}' > $ATTINI_OUTPUT"],
    });
    (body, started, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_503_on_drain_while_liveness_stays_200_until_exit() {
    let world = World::new().await;
    let queue = world.fifo_queue("ops-drain").await;
    let (mut runner, addr) = runner(&world, &queue, &[]);
    until_status(addr, "/readyz", 200).await;
    assert_eq!(get_path(addr, "/livez").await.unwrap().0, 200);

    let (body, started, release) = held_job(&world);
    let machine = world
        .state_machine("ops-drain", &native_machine(&queue, body))
        .await;
    let execution = world.start(&machine, "ops-drain-1", &json!({})).await;
    wait_for_file(&started).await;

    let (status, jobs) = get_path(addr, "/jobs").await.unwrap();
    assert_eq!(status, 200, "{jobs}");
    assert!(!jobs.contains(SECRET), "a secret in /jobs: {jobs}");
    let jobs: Value = serde_json::from_str(&jobs).unwrap();
    let job = &jobs["jobs"][0];
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(job["step"], "HeldStep", "{jobs}");
    assert_eq!(job["kind"], "commands", "{jobs}");
    assert_eq!(
        (job["command"].as_u64(), job["commands"].as_u64()),
        (Some(2), Some(3)),
        "{jobs}"
    );
    assert_eq!(job["phase"], "commands", "{jobs}");
    assert!(
        job["started"].as_str().unwrap().ends_with('Z'),
        "RFC 3339 UTC: {jobs}"
    );
    assert_eq!(job["jobId"].as_str().unwrap().len(), 36, "{jobs}");
    let metrics = get_path(addr, "/metrics").await.unwrap().1;
    assert!(
        metrics.lines().any(|l| l == "attini_runner_slots_in_use 1"),
        "{metrics}"
    );

    sigterm(&runner);
    let reason: Value = serde_json::from_str(&until_status(addr, "/readyz", 503).await).unwrap();
    assert_eq!(reason["status"], "fail");
    assert!(
        reason["reason"].as_str().unwrap().starts_with("draining"),
        "{reason}"
    );
    assert_eq!(
        get_path(addr, "/livez").await.unwrap().0,
        200,
        "alive while draining"
    );
    let draining = get_path(addr, "/metrics").await.unwrap().1;
    assert!(
        draining.lines().any(|l| l == "attini_runner_draining 1"),
        "{draining}"
    );

    std::fs::write(&release, "").unwrap();
    // Until the process is gone, every answer of /livez is 200.
    let mut answers = 0;
    while let Some((status, body)) = get_path(addr, "/livez").await {
        assert_eq!(status, 200, "{body}");
        answers += 1;
        if runner.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answers > 0);
    assert!(runner.wait().await.unwrap().success());
    assert_eq!(world.finished(&execution).await.status, "SUCCEEDED");
    // The `job finished` line says how long each phase took.
    let log = std::fs::read_to_string(world.tmp.path().join(format!("runner-{}.log", addr.port())))
        .unwrap();
    let finished = log
        .lines()
        .find(|l| l.contains("job finished"))
        .unwrap_or_else(|| panic!("no `job finished` line in\n{log}"));
    let line: Value = serde_json::from_str(finished).unwrap();
    for phase in ["admission", "workspace", "commands", "output", "report"] {
        assert!(
            line[format!("{phase}_ms")].is_u64(),
            "no {phase}_ms in {finished}"
        );
    }
}

/// Every sample of `/metrics`, parsed by the Prometheus client's OpenMetrics parser.
async fn parsed_metrics(addr: SocketAddr) -> Vec<Value> {
    let (status, text) = get_path(addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let mut parser = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tools/openmetrics.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus-client: run ./scripts/test");
    use tokio::io::AsyncWriteExt;
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .await
        .unwrap();
    let out = parser.wait_with_output().await.unwrap();
    assert_exit(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sample(samples: &[Value], name: &str, labels: Value) -> Option<f64> {
    samples
        .iter()
        .find(|s| s["name"] == name && s["labels"] == labels)
        .and_then(|s| s["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_count_the_jobs_run() {
    let world = World::new().await;
    let queue = world.fifo_queue("ops-metrics").await;
    let (mut runner, addr) = runner(&world, &queue, &[("ATTINI_MAX_CONCURRENT_JOBS", "3")]);
    until_status(addr, "/readyz", 200).await;
    // The succeeding jobs unpack a distribution, so that the engine's own figures (its
    // distribution cache) are in the same registry as the worker's.
    let dist = world.bucket("ops-dist").await;
    world
        .put(&dist, "app.zip", zip_bytes(&[("run.sh", "true", 0o755)]))
        .await;
    let job = json!({"commands": ["true"], "distribution": {"bucket": dist, "key": "app.zip"}});
    let ok = world
        .state_machine("ops-ok", &native_machine(&queue, job))
        .await;
    let failing = world
        .state_machine(
            "ops-fail",
            &native_machine(&queue, json!({"commands": ["exit 3"]})),
        )
        .await;
    let mut executions = Vec::new();
    for n in 0..2 {
        executions.push(world.start(&ok, &format!("ok-{n}"), &json!({})).await);
    }
    executions.push(world.start(&failing, "fail-0", &json!({})).await);
    let mut statuses = Vec::new();
    for execution in &executions {
        statuses.push(world.finished(execution).await.status);
    }
    assert_eq!(statuses, ["SUCCEEDED", "SUCCEEDED", "FAILED"]);

    let samples = parsed_metrics(addr).await;
    let jobs = |outcome: &str| {
        sample(
            &samples,
            "attini_runner_jobs_total",
            json!({"kind": "commands", "outcome": outcome}),
        )
    };
    assert_eq!(
        (jobs("succeeded"), jobs("failed")),
        (Some(2.0), Some(1.0)),
        "{samples:?}"
    );
    assert_eq!(
        sample(
            &samples,
            "attini_runner_job_duration_seconds_count",
            json!({"kind": "commands"})
        ),
        Some(3.0)
    );
    let lookups = |result: &str| {
        sample(
            &samples,
            "attini_runner_distribution_cache_lookups_total",
            json!({"result": result}),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(lookups("hit") + lookups("miss"), 2.0, "{samples:?}");
    assert_eq!(
        sample(
            &samples,
            "attini_runner_reports_total",
            json!({"result": "accepted"})
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            "attini_runner_queue_wait_seconds_count",
            json!({})
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(&samples, "attini_runner_slots_free", json!({})),
        Some(3.0)
    );
    assert_eq!(
        sample(&samples, "attini_runner_slots_in_use", json!({})),
        Some(0.0)
    );
    assert_eq!(
        sample(&samples, "attini_runner_draining", json!({})),
        Some(0.0)
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sample(
            &samples,
            "attini_runner_build_info",
            json!({"version": version})
        ),
        Some(1.0)
    );
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
}

async fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .env_remove("ATTINI_OPS_ADDR")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

/// A stand-in ops server whose `/livez` answers 503.
async fn sick_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route(
        "/livez",
        get(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"status\":\"fail\",\"reason\":\"stuck\"}",
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_exits_0_for_a_live_runner_and_1_otherwise() {
    let world = World::new().await;
    let queue = world.fifo_queue("ops-health").await;
    let (mut runner, addr) = runner(&world, &queue, &[]);
    until_status(addr, "/livez", 200).await;
    let addr_text = addr.to_string();

    assert_exit(&healthcheck(&["--addr", &addr_text], &[]).await, 0);
    assert_exit(
        &healthcheck(&[], &[("ATTINI_OPS_ADDR", &addr_text)]).await,
        0,
    );
    let wildcard = format!("0.0.0.0:{}", addr.port());
    assert_exit(
        &healthcheck(&[], &[("ATTINI_OPS_ADDR", &wildcard)]).await,
        0,
    );

    let sick = sick_server().await.to_string();
    let out = healthcheck(&["--addr", &sick], &[]).await;
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("503") && stderr.contains("stuck"),
        "{stderr}"
    );

    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
    let out = healthcheck(&["--addr", &addr_text], &[]).await;
    assert_exit(&out, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no answer from"),
        "{out:?}"
    );
    // With the ops server off there is nothing to ask: healthy, and it says why.
    let out = healthcheck(&[], &[("ATTINI_OPS_ADDR", "off")]).await;
    assert_exit(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the ops server is off"),
        "{out:?}"
    );
    assert_exit(
        &healthcheck(&[], &[("ATTINI_OPS_ADDR", "localhost")]).await,
        64,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_ops_address_is_a_clear_error() {
    let world = World::new().await;
    let queue = world.fifo_queue("ops-taken").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = serve_binary(&world, &queue, &[("ATTINI_OPS_ADDR", &addr)])
        .wait_with_output()
        .await
        .unwrap();
    assert_exit(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the ops server cannot listen on {addr}"))
            && stderr.contains("ATTINI_OPS_ADDR"),
        "{stderr}"
    );
}

/// The EMF documents among the lines of `stdout`.
fn emf_documents(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with("{\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attini_mode_serves_the_ops_endpoints_and_writes_emf_lines() {
    use crate::attini::{Attini, HASH};
    let a = Attini::new().await;
    let execution = a.one_step("Migrate", json!(["echo migrating"])).await;
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let addr_text = addr.to_string();
    let stdout_path = a.world.tmp.path().join("attini.stdout");
    let stdout = std::fs::File::create(&stdout_path).unwrap();
    let stderr = std::fs::File::create(a.world.tmp.path().join("attini.stderr")).unwrap();
    let extra = [
        ("ATTINI_OPS_ADDR", addr_text.as_str()),
        ("ATTINI_METRICS", "emf"),
        ("ATTINI_METRICS_INTERVAL", "1"),
    ];
    let mut runner = a
        .command("start-token-unused", "2.0.2", HASH, 120, &extra)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    until_status(addr, "/readyz", 200).await;
    let done = a.world.finished(&execution).await;
    assert_eq!(done.status, "SUCCEEDED", "{done:?}");
    let samples = parsed_metrics(addr).await;
    let succeeded = json!({"kind": "commands", "outcome": "succeeded"});
    assert_eq!(
        sample(&samples, "attini_runner_jobs_total", succeeded),
        Some(1.0)
    );

    sigterm(&runner);
    assert!(runner.wait().await.unwrap().success());
    // The writer wrote a last set at exit, so every job is counted in some interval.
    let docs = emf_documents(&std::fs::read_to_string(&stdout_path).unwrap());
    assert!(!docs.is_empty(), "no EMF line on stdout");
    let queue_name = a.queue.rsplit('/').next().unwrap();
    let mut succeeded = 0;
    for doc in &docs {
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "AttiniRunner"
        );
        assert_eq!(doc["Queue"], queue_name, "{doc}");
        succeeded += doc["JobsSucceeded"].as_u64().unwrap_or(0);
    }
    assert_eq!(succeeded, 1, "{docs:#?}");
    let by_kind: Vec<&Value> = docs.iter().filter(|d| d["Kind"] == "commands").collect();
    assert_eq!(by_kind.len(), 1, "{docs:#?}");
    assert_eq!(by_kind[0]["Outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_finish_a_request_are_capped_and_cut_and_the_probes_still_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let world = World::new().await;
    let queue = world.fifo_queue("ops-flood").await;
    let (mut runner, addr) = runner(&world, &queue, &[]);
    until_status(addr, "/livez", 200).await;
    let pid = runner.id().unwrap();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    // A hundred clients send half a request each and wait.
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(fds());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The header timeout cuts the first one: the server closes it.
    let mut first = held.remove(0);
    let mut rest = Vec::new();
    // Ends (EOF or a reset) only when the server closes the connection.
    let _ended = tokio::time::timeout(Duration::from_secs(60), first.read_to_end(&mut rest))
        .await
        .expect("a half-sent request was never cut");
    // The probes answer once the half-sent requests are cut.
    until_status(addr, "/livez", 200).await;
    assert!(
        most <= before + attini_runner::ops::listener::MAX_CONNECTIONS + 4,
        "{most} descriptors open with 100 half-sent requests ({before} before)"
    );
    drop(held);
    sigterm(&runner);
    assert!(runner.wait().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holding_a_connection_open_does_not_keep_the_runner_from_exiting() {
    use tokio::io::AsyncWriteExt;
    let world = World::new().await;
    let queue = world.fifo_queue("ops-hold").await;
    let (mut runner, addr) = runner(&world, &queue, &[]);
    until_status(addr, "/livez", 200).await;
    // Half a request, never finished: the server waits for the rest.
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    sigterm(&runner);
    let status = runner.wait().await.unwrap();
    assert!(status.success(), "{status:?}");
    drop(held);
}
