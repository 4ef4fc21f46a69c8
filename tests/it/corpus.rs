//! A corpus of bad messages (tests/corpus/bad-jobs.json) and hostile distributions, each with
//! its expected outcome, run through one live runner that must still complete a good job
//! afterwards.

use serde_json::{Value, json};

use crate::harness::{Entry, write_zip};
use crate::world::*;

/// Hostile distributions: (name, zip entries, part of the expected cause).
fn hostile(world: &World) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let absolute = absolute_target(world);
    let zip = |name: &str, entries: &[Entry]| {
        let path = world.tmp.path().join(name);
        write_zip(&path, entries);
        std::fs::read(path).unwrap()
    };
    let good = zip("good.zip", &[Entry::File("a.txt", b"a", 0o644)]);
    vec![
        (
            "slip",
            zip("slip.zip", &[Entry::File("../../escape.txt", b"x", 0o644)]),
            "(zip-slip)",
        ),
        (
            "absolute",
            zip(
                "abs.zip",
                &[Entry::File(absolute.to_str().unwrap(), b"x", 0o644)],
            ),
            "which is an absolute path",
        ),
        (
            "link-out",
            zip("link.zip", &[Entry::Link("etc", "../../../etc")]),
            "points outside the distribution",
        ),
        (
            "link-abs",
            zip("link-abs.zip", &[Entry::Link("passwd", "/etc/passwd")]),
            "points outside the distribution",
        ),
        (
            "link-chain",
            zip(
                "chain.zip",
                &[Entry::Link("here", "."), Entry::Link("up", "here/..")],
            ),
            "points outside the distribution",
        ),
        (
            "bomb",
            zip(
                "bomb.zip",
                &[Entry::File("zeros", &vec![0u8; 2_000_000], 0o644)],
            ),
            "unpacks to more than 1000000 bytes",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "not a valid zip archive",
        ),
        (
            "not-a-zip",
            b"PK but not really".to_vec(),
            "not a valid zip archive",
        ),
        // Refused before it fills the disk: more than the limit plus its margin (2 MB here).
        (
            "oversize",
            (0..2_500_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            "larger than a distribution may be",
        ),
    ]
}

/// Where the `absolute` zip's entry would land if it were extracted: inside this test's folder.
fn absolute_target(world: &World) -> std::path::PathBuf {
    world.tmp.path().join("absolute-escape.txt")
}

/// The README's count: 42 bad messages, 9 hostile distributions, 1 missing distribution.
const CORPUS_CASES: usize = 52;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_and_distributions_never_stop_the_runner() {
    let world = World::new().await;
    let corpus: Value = serde_json::from_str(include_str!("../corpus/bad-jobs.json")).unwrap();
    let queue = world.fifo_queue("corpus").await;
    let dist = world.bucket("dist").await;

    let mut config = world.engine_config();
    config.limits.max_bytes = 1_000_000;
    let runner = world.serve_with(&queue, 3, config);

    let unanswerable = corpus["unanswerable"].as_array().unwrap();
    for (i, body) in unanswerable.iter().enumerate() {
        world
            .clients
            .sqs
            .send_message()
            .queue_url(&queue)
            .message_body(body.as_str().unwrap())
            .message_group_id(format!("raw{i}"))
            .message_deduplication_id(format!("raw{i}"))
            .send()
            .await
            .unwrap();
    }

    let mut executions = Vec::new();
    for case in corpus["refused"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let machine = world
            .state_machine(name, &native_machine(&queue, case["body"].clone()))
            .await;
        // An Attini plan's message keeps the name its plans match; any other is the job's fault.
        let error = if case["body"]
            .to_string()
            .contains("deploymentPlanExecutionMetadata")
        {
            "RuntimeError"
        } else {
            "Job.Invalid"
        };
        executions.push((
            name.to_string(),
            world.start(&machine, name, &json!({})).await,
            case["cause"].as_str().unwrap().to_string(),
            error,
        ));
    }
    for (name, bytes, cause) in hostile(&world) {
        world.put(&dist, &format!("{name}.zip"), bytes).await;
        let body = json!({"commands": ["echo must-not-run"], "distribution": {"bucket": dist, "key": format!("{name}.zip")}});
        let machine = world
            .state_machine(&format!("dist-{name}"), &native_machine(&queue, body))
            .await;
        executions.push((
            name.to_string(),
            world.start(&machine, name, &json!({})).await,
            cause.to_string(),
            "Job.Invalid",
        ));
    }
    let missing =
        json!({"commands": ["true"], "distribution": {"bucket": dist, "key": "missing.zip"}});
    let machine = world
        .state_machine("dist-missing", &native_machine(&queue, missing))
        .await;
    executions.push((
        "missing".into(),
        world.start(&machine, "missing", &json!({})).await,
        format!("s3://{dist}/missing.zip does not exist"),
        "Job.Invalid",
    ));

    let total = unanswerable.len() + executions.len();
    assert_eq!(
        total, CORPUS_CASES,
        "update the README's count of the corpus"
    );
    for (name, execution, cause, error) in &executions {
        let done = world.finished(execution).await;
        assert_eq!(done.status, "FAILED", "{name}: {done:?}");
        assert_eq!(done.error.as_deref(), Some(*error), "{name}: {done:?}");
        let got = done.cause.unwrap_or_default();
        assert!(
            got.contains(cause.as_str()),
            "{name}: cause {got:?} should contain {cause:?}"
        );
    }
    assert!(!absolute_target(&world).exists());

    let good = json!({"commands": ["echo '{\"after\": \"corpus\"}' > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("good", &native_machine(&queue, good))
        .await;
    let done = world
        .finished(&world.start(&machine, "good", &json!({})).await)
        .await;
    assert_eq!(done.output, Some(json!({"after": "corpus"})));
    // Every message is gone, visible or in flight: none was left or forgotten.
    world.wait_until_empty(&queue).await;
    runner.stop().await;
}
