//! The runner's item in the resource-state table (CONTRACT.md 2): key
//! `resourceType = "Runner"`, `name = ATTINI_RUNNER_RESOURCE_NAME`. The one place that reads it
//! and writes `started`. Each call is one DynamoDB request; dropping it cancels it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::retry::{self, AwsError};

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
    pub async fn read(&self, consistent: bool) -> Result<Item, AwsError> {
        self.dynamodb
            .get_item()
            .table_name(&self.table)
            .key("resourceType", AttributeValue::S("Runner".into()))
            .key("name", AttributeValue::S(self.name.clone()))
            .consistent_read(consistent)
            .send()
            .await
            .map(|out| out.item.unwrap_or_default())
            .map_err(|e| retry::classify("GetItem", &e))
    }

    /// `SET started = true` on condition that `taskId` is `own_task`.
    pub async fn mark_started(&self, own_task: &str) -> Result<Started, AwsError> {
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
            Err(e) => Err(retry::classify("UpdateItem", &e)),
        }
    }
}

/// A string attribute, if present.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a String> {
    item.get(name).and_then(|v| v.as_s().ok())
}
