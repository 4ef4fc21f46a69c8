//! The Attini DynamoDB tables (CONTRACT.md 2): the runner's item in the resource-state table
//! (key `resourceType = "Runner"`, `name = ATTINI_RUNNER_RESOURCE_NAME`; the one place that
//! reads it and writes `started`), the deploy-data record of the current deployment, and the
//! `CloudformationStack` items of `save-cdk-stacks`. Reads and writes retry transient errors
//! (throttling, 5xx, timeouts, connection errors) with jittered backoff for up to
//! [`DYNAMODB_DEADLINE`]; only what is left after that reaches the caller. Dropping a call
//! cancels it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use std::time::Duration;

use std::sync::Arc;

use super::error::classify;
use crate::calls::with_backoff;
use crate::metrics::Figures;
use crate::worker::CallError;

/// How long a DynamoDB call is retried through transient errors: two minutes, so that a minute
/// of throttling is ridden out.
pub const DYNAMODB_DEADLINE: Duration = Duration::from_secs(120);

/// The item's attributes.
pub type Item = HashMap<String, AttributeValue>;

/// Where the runner's item lives.
#[derive(Debug, Clone)]
pub struct RunnerItem {
    /// The DynamoDB client.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// `ATTINI_RESOURCE_STATE_TABLE`.
    pub table: String,
    /// `ATTINI_RUNNER_RESOURCE_NAME`.
    pub name: String,
    /// Where failed calls are counted.
    pub figures: Arc<Figures>,
}

/// What the `started` handshake found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// `started` is now true.
    Marked,
    /// The item names another task (this runner is probably redundant).
    OtherTask,
}

impl RunnerItem {
    /// Reads the item (empty when it does not exist); `consistent` for a strongly consistent read.
    pub async fn read(&self, consistent: bool) -> Result<Item, CallError> {
        with_backoff(DYNAMODB_DEADLINE, || async {
            self.dynamodb
                .get_item()
                .table_name(&self.table)
                .key("resourceType", AttributeValue::S("Runner".into()))
                .key("name", AttributeValue::S(self.name.clone()))
                .consistent_read(consistent)
                .send()
                .await
                .map(|out| out.item.unwrap_or_default())
                .map_err(|e| classify(&self.figures, "GetItem", e))
        })
        .await
    }

    /// `SET started = true` on condition that `taskId` is `own_task`.
    pub async fn mark_started(&self, own_task: &str) -> Result<Started, CallError> {
        with_backoff(DYNAMODB_DEADLINE, || self.try_mark_started(own_task)).await
    }

    async fn try_mark_started(&self, own_task: &str) -> Result<Started, CallError> {
        let result = self
            .dynamodb
            .update_item()
            .table_name(&self.table)
            .key("resourceType", AttributeValue::S("Runner".into()))
            .key("name", AttributeValue::S(self.name.clone()))
            .update_expression("SET started = :started")
            .condition_expression("taskId = :own")
            .expression_attribute_values(":started", AttributeValue::Bool(true))
            .expression_attribute_values(":own", AttributeValue::S(own_task.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Started::Marked),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Started::OtherTask)
            }
            Err(e) => Err(classify(&self.figures, "UpdateItem", e)),
        }
    }
}

/// A string attribute, if present.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a String> {
    item.get(name).and_then(|v| v.as_s().ok())
}

/// Whether `execution_arn` is among the `executionArns` of the current deployment record of
/// `deployment_name` (key `deploymentTime = 0`) in the deploy-data `table`; `None` when there
/// is no such record.
pub async fn is_current_execution(
    figures: &Figures,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    deployment_name: &str,
    execution_arn: &str,
) -> Result<Option<bool>, CallError> {
    let out = with_backoff(DYNAMODB_DEADLINE, || async {
        dynamodb
            .get_item()
            .table_name(table)
            .key("deploymentName", AttributeValue::S(deployment_name.into()))
            .key("deploymentTime", AttributeValue::N("0".into()))
            .send()
            .await
            .map_err(|e| classify(figures, "GetItem", e))
    })
    .await?;
    let arns = out
        .item
        .as_ref()
        .and_then(|i| i.get("executionArns"))
        .and_then(|v| v.as_m().ok());
    Ok(arns.map(|m| {
        m.values()
            .any(|v| v.as_s().is_ok_and(|s| s == execution_arn))
    }))
}

/// Puts one item of string attributes into `table`.
pub async fn put_strings(
    figures: &Figures,
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    item: Vec<(String, String)>,
) -> Result<(), CallError> {
    let item: Item = item
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect();
    with_backoff(DYNAMODB_DEADLINE, || async {
        dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(figures, "PutItem", e))
    })
    .await
}
