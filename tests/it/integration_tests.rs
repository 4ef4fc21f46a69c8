//! `examples/integration-tests`: a pytest suite run by the runner binary in `serve` on the
//! emulator against a real HTTP service the job's environment names. Passing, the job's output
//! is the summary and the JUnit report is in the artifact store where the summary says; with a
//! test failing, the job fails with that test's name in the cause and the report is still
//! stored.

use std::path::Path;

use serde_json::{Value, json};

use crate::tools::{Tools, example};
use crate::world::*;

/// A static HTTP service (`python3 -m http.server`) over `dir`, answering when returned.
pub async fn service(dir: &Path) -> (tokio::process::Child, String) {
    let port = crate::harness::free_port();
    let child = tokio::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .arg("--directory")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, url);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the test service did not answer on {url} within 30 s");
}

/// The service's answers the example's tests expect (`health`, `version`, `orders`), in a
/// folder `site` under `dir`.
pub fn site(dir: &Path) -> std::path::PathBuf {
    let site = dir.join("site");
    std::fs::create_dir(&site).unwrap();
    for (file, body) in [
        ("health", r#"{"status": "ok"}"#),
        ("version", r#"{"version": "1.4.2"}"#),
        ("orders", r#"{"orders": []}"#),
    ] {
        std::fs::write(site.join(file), body).unwrap();
    }
    site
}

/// The example's distribution as a zip.
fn distribution() -> Vec<u8> {
    let dist = example("integration-tests").join("dist");
    let read = |name: &str| std::fs::read_to_string(dist.join(name)).unwrap();
    let (run, summarize, tests) = (
        read("run-tests.sh"),
        read("summarize.py"),
        read("tests/test_service.py"),
    );
    zip_bytes(&[
        ("run-tests.sh", &run, 0o755),
        ("summarize.py", &summarize, 0o644),
        ("tests/test_service.py", &tests, 0o644),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_reports_a_summary_stores_its_report_and_names_a_failing_test() {
    let Some(tools) = Tools::get("integration tests") else {
        return;
    };
    let world = World::new().await;
    let site = site(world.tmp.path());
    let (_service, url) = service(&site).await;
    let bucket = world.bucket("dist").await;
    world.put(&bucket, "tests.zip", distribution()).await;
    let store = world.bucket("artifact-store").await;
    let file = example("integration-tests").join("job.json");
    let mut body: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    body["environment"]["SERVICE_URL"] = json!(url);
    body["distribution"] = json!({"bucket": bucket, "key": "tests.zip"});

    let queue = world.fifo_queue("tests").await;
    let path = Tools::path_with(&[tools.python_bin()]);
    // The runner masks its AWS credentials in job output: the emulator's usual `test` would
    // mask every "test" of the summary.
    let extra = [
        ("PATH", path.as_str()),
        ("ATTINI_ARTIFACT_STORE", store.as_str()),
        ("AWS_ACCESS_KEY_ID", "emulator-access-key"),
        ("AWS_SECRET_ACCESS_KEY", "emulator-secret-key"),
    ];
    let runner = serve_binary(&world, &queue, &extra);
    let machine = world
        .state_machine("tests", &native_machine(&queue, body))
        .await;

    let passed = world
        .finished(&world.start(&machine, "passing", &json!({})).await)
        .await;
    assert_eq!(passed.status, "SUCCEEDED", "{passed:?}");
    let summary = passed.output.unwrap();
    assert_eq!(
        (&summary["passed"], &summary["failed"], &summary["skipped"]),
        (&json!(3), &json!(0), &json!(0)),
        "{summary}"
    );
    let location = summary["report"].as_str().unwrap();
    let key = location
        .strip_prefix(&format!("s3://{store}/"))
        .unwrap_or_else(|| panic!("{location} is not in the artifact store {store}"));
    let report = String::from_utf8(world.get(&store, key).await.unwrap()).unwrap();
    assert!(
        report.contains("<testsuite") && report.contains("tests=\"3\""),
        "{report}"
    );

    std::fs::remove_file(site.join("version")).unwrap();
    let failed = world
        .finished(&world.start(&machine, "failing", &json!({})).await)
        .await;
    assert_eq!(failed.status, "FAILED", "{failed:?}");
    assert_eq!(failed.error.as_deref(), Some("ScriptExecutionError"));
    let cause = failed.cause.unwrap_or_default();
    assert!(
        cause.ends_with("1 failed: tests/test_service.py::test_version_is_reported"),
        "{cause}"
    );
    let stored = world
        .clients
        .s3
        .list_objects_v2()
        .bucket(&store)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stored.contents().len(),
        2,
        "the failing run's report is stored too"
    );
    drop(runner);
}
