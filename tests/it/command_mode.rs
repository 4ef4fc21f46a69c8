//! `command-mode` subcommands as CDK and SAM job scripts call them, against the emulator:
//! the exact DynamoDB item, S3 object and stdout of CONTRACT.md 8.

use std::process::Output;

use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use serde_json::{Value, json};

use crate::world::*;

const BIN: &str = env!("CARGO_BIN_EXE_attini-runner");
const TABLE: &str = "AttiniResourceStatesV1";
const BUCKET: &str = "artifacts";

async fn command(world: &World, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .arg("command-mode")
        .args(args)
        .envs(world.emulator.env())
        .env("ATTINI_RESOURCE_STATE_TABLE", world.unique(TABLE))
        .env("ATTINI_AWS_REGION", "us-east-1")
        .env("ATTINI_AWS_ACCOUNT", "000000000000")
        .env("ATTINI_ARTIFACT_STORE", world.unique(BUCKET))
        .current_dir(world.tmp.path())
        .output()
        .await
        .unwrap()
}

/// The `CloudformationStack` item `name`, if any.
async fn stack_item(
    world: &World,
    name: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    world
        .clients
        .dynamodb
        .get_item()
        .table_name(world.unique(TABLE))
        .key(
            "resourceType",
            AttributeValue::S("CloudformationStack".into()),
        )
        .key("name", AttributeValue::S(name.into()))
        .send()
        .await
        .unwrap()
        .item
}

fn stacks_event(request: &str) -> Value {
    json!({
        "requestType": request, "objectIdentifier": "dev/demo/demo.zip#v1", "distributionId": "d-1",
        "distributionName": "demo", "environment": "dev", "stepName": "DeployCdk",
        "stacks": [
            {"name": "demo-db", "id": "Database", "environment": {"account": "unknown-account", "region": "unknown-region", "name": "aws://unknown-account/unknown-region"}},
            {"name": "demo-web", "id": "Web", "environment": {"account": "111122223333", "region": "eu-west-1", "name": "aws://111122223333/eu-west-1"}}
        ],
        "outputs": {"demo-db": {"TableName": "demo-db-table"}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helpers_write_what_the_attini_framework_reads() {
    let world = World::new().await;
    world
        .table(TABLE, "resourceType", "name", ScalarAttributeType::S)
        .await;
    world.bucket(BUCKET).await;

    let out = command(
        &world,
        &[
            "save-cdk-stacks",
            &stacks_event("save-cdk-stacks").to_string(),
        ],
    )
    .await;
    crate::harness::assert_exit(&out, 0);
    assert!(out.stdout.is_empty());
    let item = stack_item(&world, "demo-db-us-east-1-000000000000")
        .await
        .expect("the stack item");
    let expected: std::collections::HashMap<String, AttributeValue> = [
        ("resourceType", "CloudformationStack"),
        ("name", "demo-db-us-east-1-000000000000"),
        ("stackType", "Cdk"),
        ("stepName", "DeployCdk"),
        ("distributionName", "demo"),
        ("distributionId", "d-1"),
        ("attiniObjectIdentifier", "dev/demo/demo.zip#v1"),
        ("environment", "dev"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())))
    .collect();
    assert_eq!(item, expected);
    let web = stack_item(&world, "demo-web-eu-west-1-111122223333").await;
    assert!(web.is_some());

    let out = command(
        &world,
        &[
            "format-cdk-output",
            &stacks_event("format-cdk-stacks-output").to_string(),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        printed,
        json!({"Database": {"TableName": "demo-db-table"}, "Web": {}})
    );

    std::fs::write(world.tmp.path().join("template.yaml"), "Resources: {}\n").unwrap();
    let out = command(
        &world,
        &[
            "store-artifact",
            "dev/demo/d-1/.sam-source/app/template.yaml",
            "./template.yaml",
        ],
    )
    .await;
    crate::harness::assert_exit(&out, 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Storing ./template.yaml in artifact store.\n"
    );
    assert_eq!(
        world
            .get(
                &world.unique(BUCKET),
                "dev/demo/d-1/.sam-source/app/template.yaml"
            )
            .await
            .unwrap(),
        b"Resources: {}\n"
    );
    assert!(!world.tmp.path().join("attini-runner-commands.log").exists());

    let out = command(&world, &["store-artifact", "k", "./missing.yaml"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Encountered errored, printing logs to error stream\n"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot read ./missing.yaml"), "{stderr}");
    assert!(!world.tmp.path().join("attini-runner-commands.log").exists());

    let out = command(&world, &["save-cdk-stacks", "{not json"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the stacks event is not valid JSON"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdk_job_registers_its_stacks_where_the_resource_state_table_is_set() {
    let world = World::new().await;
    world
        .table(TABLE, "resourceType", "name", ScalarAttributeType::S)
        .await;
    let path = crate::cli::fake_cdk(world.tmp.path());
    let job = crate::cli::cdk_job(world.tmp.path());
    let out = tokio::process::Command::new(BIN)
        .args(["local", &job])
        .envs(world.emulator.env())
        .env("PATH", path)
        .env("ATTINI_WORK_DIR", world.tmp.path().join("work"))
        .env("ATTINI_JOB_TIMEOUT", "120")
        .env("ATTINI_RESOURCE_STATE_TABLE", world.unique(TABLE))
        .env("ATTINI_AWS_REGION", "eu-north-1")
        .env("ATTINI_AWS_ACCOUNT", "444455556666")
        .output()
        .await
        .unwrap();
    crate::harness::assert_exit(&out, 0);
    // The stack's unknown account and region are this runner's, in the item's name.
    let item = stack_item(&world, "demo-db-eu-north-1-444455556666")
        .await
        .expect("the stack was not registered");
    assert_eq!(item["stackType"], AttributeValue::S("Cdk".into()));
}
