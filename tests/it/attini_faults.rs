//! Attini mode when DynamoDB misbehaves, through the fault proxy: throttling and 5xx are ridden
//! out, and a runner item the role may not read fails the job with `IllegalAccessException`
//! and stops the runner (CONTRACT.md 5.4).

use std::time::Duration;

use serde_json::json;

use crate::attini::*;
use crate::aws_faults::until;
use crate::deny::{DenyingProxy, Fault};

const GET_ITEM: &str = "DynamoDB_20120810.GetItem";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attini_mode_keeps_serving_through_dynamodb_throttling_and_5xx() {
    let a = Attini::new().await;
    let execution = a
        .one_step("Step", json!(["echo '\"served\"' > $ATTINI_OUTPUT"]))
        .await;
    let proxy = DenyingProxy::start(&a.world.emulator.endpoint, &[]).await;
    proxy.fault(
        GET_ITEM,
        Fault::Error(400, "ProvisionedThroughputExceededException"),
        6,
    );
    proxy.fault(GET_ITEM, Fault::Error(500, "InternalServerError"), 4);
    a.run_through(&proxy.url).await;
    let done = a.world.finished(&execution).await;
    assert_eq!(done.output.unwrap()["output"]["Step"], json!("served"));
    // All ten faults were met and retried.
    assert!(
        proxy.count(GET_ITEM) >= 12,
        "{} GetItem requests",
        proxy.count(GET_ITEM)
    );
}

/// The role loses `dynamodb:GetItem` after the runner started: the next job is failed with
/// the Attini Runner's `IllegalAccessException` and cause, it does not run, and the runner
/// stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_item_the_role_may_not_read_fails_the_job_with_illegal_access_and_stops() {
    let a = Attini::new().await;
    a.runner_item(&a.task_arn, vec![]).await;
    a.small_distribution().await;
    let proxy = DenyingProxy::start(&a.world.emulator.endpoint, &[]).await;
    let marker = a.world.tmp.path().join("ran");
    let mut runner = a
        .command(
            "unused-start-token",
            "2.0.2",
            HASH,
            60,
            &[("AWS_ENDPOINT_URL", &proxy.url)],
        )
        .spawn()
        .unwrap();
    // The start-up read of the item has gone through; from now on every read is denied.
    until("the runner read its item", || proxy.count(GET_ITEM) >= 1).await;
    proxy.fault(GET_ITEM, Fault::Error(400, "AccessDeniedException"), 1000);
    let touch = format!("touch {}", marker.display());
    let machine = a.machine("plan", "Step", json!([touch]), HASH).await;
    let execution = a.world.start(&machine, "exec-1", &json!({})).await;
    a.current(&[&execution]).await;
    let done = a.world.finished(&execution).await;
    assert_eq!(done.error.as_deref(), Some("IllegalAccessException"));
    let cause = done.cause.unwrap_or_default();
    let expected = format!(
        "The runners IAM role does not have permission to read from the {} dynamodb table. Will terminate the container",
        a.resource_table
    );
    assert!(cause.starts_with(&expected), "{cause}");
    let status = tokio::time::timeout(Duration::from_secs(60), runner.wait())
        .await
        .expect("the runner did not stop")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!marker.exists(), "the job ran");
}
