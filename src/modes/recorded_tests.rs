//! Jobs rebuilt from task parameters: serve-mode bodies as objects or text, Attini payloads
//! into the dispatcher's message, and refusals that say what is missing.

use serde_json::{Value, json};

use super::*;

fn task(resource: &str, parameters: Value) -> Task {
    Task {
        step: "Run".into(),
        resource: resource.into(),
        parameters: parameters.to_string(),
        scheduled_ms: 0,
        ended_ms: None,
        ending: None,
    }
}

const SQS: &str = "arn:aws:states:::sqs:sendMessage.waitForTaskToken";
const LAMBDA: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

#[test]
fn a_serve_job_is_its_message_body_as_an_object_or_as_text() {
    let body = json!({"taskToken": "t1", "commands": ["true"]});
    let object = task(SQS, json!({"QueueUrl": "q", "MessageBody": body}));
    assert_eq!(job_body(&object).unwrap(), body.to_string());
    assert_eq!(token(&object).as_deref(), Ok("t1"));
    let tokenless = task(SQS, json!({"MessageBody": {"commands": ["true"]}}));
    assert!(
        token(&tokenless)
            .unwrap_err()
            .to_string()
            .contains("no task token (taskToken")
    );
    let text = task(
        SQS,
        json!({"QueueUrl": "q", "MessageBody": body.to_string()}),
    );
    assert_eq!(job_body(&text).unwrap(), body.to_string());
    let none = task(SQS, json!({"QueueUrl": "q"}));
    assert_eq!(
        job_body(&none).unwrap_err().to_string(),
        "step Run: its parameters have no MessageBody, so its job cannot be rebuilt"
    );
    assert!(token(&none).is_err());
}

#[test]
fn an_attini_runner_step_is_the_dispatchers_message() {
    let payload = json!({
        "attiniActionType": "ExecuteRunner",
        "environment": "dev",
        "Properties": {"Commands": ["true"]},
        "deploymentPlanExecutionMetadata": {"sfnToken": "t2"},
    });
    let job = job_body(&task(
        LAMBDA,
        json!({"FunctionName": "attini-action", "Payload": payload}),
    ))
    .unwrap();
    let message: Value = serde_json::from_str(&job).unwrap();
    assert_eq!(
        message,
        json!({
            "Properties": {"Commands": ["true"]},
            "deploymentPlanExecutionMetadata": {"sfnToken": "t2"},
            "taskConfigHashCode": 0,
        })
    );
    let kept = json!({"attiniActionType": "ExecuteRunner", "taskConfigHashCode": 7});
    let job = job_body(&task(LAMBDA, json!({"Payload": kept}))).unwrap();
    assert!(job.contains(r#""taskConfigHashCode":7"#), "{job}");
}

#[test]
fn what_cannot_be_rebuilt_is_refused_saying_what_is_missing() {
    let cdk = task(
        LAMBDA,
        json!({"Payload": {"attiniActionType": "DeployCdk"}}),
    );
    assert!(matches!(
        job_body(&cdk),
        Err(RebuildError::AttiniAction { action, .. }) if action == "DeployCdk"
    ));
    let no_action = task(LAMBDA, json!({"Payload": {}}));
    assert!(
        job_body(&no_action)
            .unwrap_err()
            .to_string()
            .contains("Payload.attiniActionType")
    );
    assert!(
        job_body(&task(LAMBDA, json!({})))
            .unwrap_err()
            .to_string()
            .contains("no Payload")
    );
    let other = task("arn:aws:states:::dynamodb:putItem", json!({}));
    assert!(
        job_body(&other)
            .unwrap_err()
            .to_string()
            .contains("runs arn:aws:states:::dynamodb:putItem, not a runner job")
    );
    let mut blank = task(SQS, json!({}));
    blank.parameters = String::new();
    assert_eq!(
        job_body(&blank),
        Err(RebuildError::NoParameters { step: "Run".into() })
    );
    blank.parameters = "not json".into();
    assert_eq!(
        job_body(&blank),
        Err(RebuildError::NoParameters { step: "Run".into() })
    );
}

#[test]
fn only_tasks_that_wait_for_their_token_on_sqs_or_lambda_may_carry_a_job() {
    assert!(may_carry_a_job(&task(SQS, json!({}))));
    assert!(may_carry_a_job(&task(LAMBDA, json!({}))));
    assert!(!may_carry_a_job(&task(
        "arn:aws:states:::sqs:sendMessage",
        json!({})
    )));
    assert!(!may_carry_a_job(&task(
        "arn:aws:states:::ecs:runTask.waitForTaskToken",
        json!({})
    )));
}
