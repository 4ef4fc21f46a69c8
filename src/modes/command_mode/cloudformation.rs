//! `stack-outputs <stack>` and `stack-events <stack>`: what the `sam` kind's script asks
//! CloudFormation after `sam deploy`. The outputs become the job's output
//! `{"<OutputKey>": "<OutputValue>"}` (`{}` for a stack without outputs); the events of a
//! failed deploy are printed one per line, oldest first, ending with the first failure, so that
//! CloudFormation's reason is in the job's failure cause. One short run; nothing to cancel.

use aws_sdk_cloudformation::types::{Stack, StackEvent};
use serde_json::{Map, Value};

use super::CommandError;
use crate::aws::Clients;
use crate::aws::error::classify;

/// The stack's outputs as one JSON object.
pub async fn outputs(clients: &Clients, stack: &str) -> Result<Value, CommandError> {
    let found = describe_stack(clients, stack).await?;
    let mut map = Map::new();
    for output in found.as_ref().map(|s| s.outputs()).unwrap_or_default() {
        if let Some(key) = output.output_key() {
            let value = output.output_value().unwrap_or_default();
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    Ok(Value::Object(map))
}

/// The lines describing the stack's last operation's failures (see the module header).
pub async fn failure_lines(clients: &Clients, stack: &str) -> Result<Vec<String>, CommandError> {
    let mut lines = Vec::new();
    if let Some(s) = describe_stack(clients, stack).await? {
        let state = s.stack_status().map(|s| s.as_str()).unwrap_or("unknown");
        let reason = s.stack_status_reason().unwrap_or_default();
        lines.push(
            format!("CloudFormation: stack {stack} is {state} {reason}")
                .trim_end()
                .to_string(),
        );
    }
    let events = clients
        .cloudformation
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| CommandError::Call(classify(&clients.figures, "DescribeStackEvents", e)))?;
    let failed = last_operation_failures(events.stack_events(), stack);
    lines.extend(failed.iter().map(|e| describe(e)));
    if let Some(first) = failed.first() {
        lines.push(format!(
            "CloudFormation's first failure: {}",
            describe(first)
        ));
    }
    Ok(lines)
}

/// The stack as DescribeStacks tells it.
async fn describe_stack(clients: &Clients, stack: &str) -> Result<Option<Stack>, CommandError> {
    let described = clients
        .cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| CommandError::Call(classify(&clients.figures, "DescribeStacks", e)))?;
    Ok(described.stacks().first().cloned())
}

/// The stack's own statuses that begin an operation.
const OPERATION_STARTS: [&str; 4] = [
    "CREATE_IN_PROGRESS",
    "UPDATE_IN_PROGRESS",
    "REVIEW_IN_PROGRESS",
    "IMPORT_IN_PROGRESS",
];

/// The failed events since the stack's last operation began, oldest first. `events` come
/// newest first, as DescribeStackEvents returns them.
fn last_operation_failures<'a>(events: &'a [StackEvent], stack: &str) -> Vec<&'a StackEvent> {
    let mut failed = Vec::new();
    for event in events {
        let status = event.resource_status().map(|s| s.as_str()).unwrap_or("");
        let own = event.logical_resource_id() == Some(stack);
        if own && OPERATION_STARTS.contains(&status) {
            break;
        }
        let reason = event.resource_status_reason().unwrap_or_default();
        if status.ends_with("_FAILED") && !reason.is_empty() {
            failed.push(event);
        }
    }
    failed.reverse();
    failed
}

fn describe(event: &StackEvent) -> String {
    format!(
        "{} ({}) {}: {}",
        event.logical_resource_id().unwrap_or("?"),
        event.resource_type().unwrap_or("?"),
        event.resource_status().map(|s| s.as_str()).unwrap_or("?"),
        event.resource_status_reason().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudformation::types::ResourceStatus;

    fn event(id: &str, status: &str, reason: &str) -> StackEvent {
        StackEvent::builder()
            .logical_resource_id(id)
            .resource_type(if id == "app" {
                "AWS::CloudFormation::Stack"
            } else {
                "AWS::SQS::Queue"
            })
            .resource_status(ResourceStatus::from(status))
            .resource_status_reason(reason)
            .build()
    }

    #[test]
    fn only_the_failures_of_the_last_operation_are_told_oldest_first() {
        // Newest first, as DescribeStackEvents returns them: a failed update after an
        // earlier failed create.
        let events = [
            event("app", "UPDATE_ROLLBACK_COMPLETE", ""),
            event("Queue", "UPDATE_FAILED", "second reason"),
            event("Topic", "UPDATE_FAILED", "first reason"),
            event("Topic", "UPDATE_IN_PROGRESS", ""),
            event("app", "UPDATE_IN_PROGRESS", "User Initiated"),
            event("app", "CREATE_COMPLETE", ""),
            event("Old", "CREATE_FAILED", "an older operation's reason"),
            event("app", "CREATE_IN_PROGRESS", "User Initiated"),
        ];
        let failed = last_operation_failures(&events, "app");
        let told: Vec<String> = failed.iter().map(|e| describe(e)).collect();
        assert_eq!(
            told,
            [
                "Topic (AWS::SQS::Queue) UPDATE_FAILED: first reason",
                "Queue (AWS::SQS::Queue) UPDATE_FAILED: second reason"
            ]
        );
        assert!(last_operation_failures(&events[..1], "app").is_empty());
    }

    /// Only the stack's own start ends the search, not a resource's `*_IN_PROGRESS`; an event
    /// with a reason that did not fail, or one that failed without a reason, is not told.
    #[test]
    fn a_resource_in_progress_or_a_reason_without_failure_is_not_a_failure_told() {
        let events = [
            event(
                "app",
                "UPDATE_ROLLBACK_IN_PROGRESS",
                "The following resource(s) failed",
            ),
            event("Queue", "UPDATE_FAILED", "second reason"),
            event("Queue", "UPDATE_IN_PROGRESS", "Resource update Initiated"),
            event("Topic", "UPDATE_FAILED", "first reason"),
            event("Topic", "UPDATE_FAILED", ""),
            event("app", "UPDATE_IN_PROGRESS", "User Initiated"),
        ];
        let told: Vec<String> = last_operation_failures(&events, "app")
            .iter()
            .map(|e| describe(e))
            .collect();
        assert_eq!(
            told,
            [
                "Topic (AWS::SQS::Queue) UPDATE_FAILED: first reason",
                "Queue (AWS::SQS::Queue) UPDATE_FAILED: second reason"
            ]
        );
    }
}
