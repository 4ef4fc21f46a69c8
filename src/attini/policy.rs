//! The Attini poll filters (CONTRACT.md 5.4), per received message: ECS stopping -> leave it;
//! another task owns the runner item -> shut down and leave it; no permission to read the
//! item -> fail the job with `IllegalAccessException` and shut down; a job of an execution that
//! is no longer the current deployment -> answer it as stale and delete it; another
//! configuration hash -> leave it for the new runner. Cancellation: dropping a decision leaves
//! the message in the queue.

use aws_sdk_dynamodb::types::AttributeValue;

use super::AttiniConfig;
use super::item::{self, RunnerItem};
use crate::admit;
use crate::aws::Clients;
use crate::dispatch::{Admission, Policy};
use crate::ecs::Metadata;
use crate::job::{self, AttiniContext};
use crate::queue::Message;
use crate::report::Report;
use crate::retry::{self, Class};

/// Error name of a job whose execution is no longer the current deployment.
pub const STALE_EXECUTION: &str = "Runner.StaleExecution";

/// Decides about messages in Attini mode.
pub struct AttiniPolicy {
    config: AttiniConfig,
    clients: Clients,
    metadata: Option<Metadata>,
    own_task: Option<String>,
    item: RunnerItem,
}

impl AttiniPolicy {
    /// The policy of the runner whose task ARN is `own_task` (none off ECS: no taskId check).
    pub fn new(
        config: AttiniConfig,
        clients: Clients,
        metadata: Option<Metadata>,
        own_task: Option<String>,
    ) -> Self {
        let item = config.runner_item(&clients);
        AttiniPolicy {
            config,
            clients,
            metadata,
            own_task,
            item,
        }
    }

    /// `Some(refusal)` when this runner must not take jobs.
    async fn check_ownership(&self, message: &Message) -> Option<Admission> {
        let own = self.own_task.as_ref()?;
        let read = self.item.read(false).await;
        match read {
            Ok(found) => {
                let current = item::text(&found, "taskId");
                (current != Some(own)).then(|| {
                    Admission::Shutdown(format!(
                        "the resource state names task {current:?}, not this task {own:?}: another runner took over"
                    ))
                })
            }
            Err(e) => {
                let cause = format!(
                    "The runners IAM role does not have permission to read from the {} dynamodb table. Will terminate the container ({e})",
                    self.config.resource_state_table
                );
                Some(match job::salvage_token(&message.body) {
                    Some(token) if e.class == Class::Denied => Admission::FailAndShutdown {
                        token,
                        report: Report::failure("IllegalAccessException", cause.clone()),
                        reason: cause,
                    },
                    _ => Admission::Shutdown(cause),
                })
            }
        }
    }

    /// Whether the job's execution is the current deployment (`None`: cannot tell).
    async fn is_current(&self, attini: &AttiniContext) -> Result<Option<bool>, String> {
        let out = self
            .clients
            .dynamodb
            .get_item()
            .table_name(&self.config.deploy_data_table)
            .key(
                "deploymentName",
                AttributeValue::S(attini.deployment_name()),
            )
            .key("deploymentTime", AttributeValue::N("0".into()))
            .send()
            .await
            .map_err(|e| retry::classify("GetItem", &e).to_string())?;
        let arns = out
            .item
            .as_ref()
            .and_then(|i| i.get("executionArns"))
            .and_then(|v| v.as_m().ok());
        Ok(arns.map(|m| {
            m.values()
                .any(|v| v.as_s().is_ok_and(|s| *s == attini.execution_arn))
        }))
    }
}

impl Policy for AttiniPolicy {
    async fn admit(&self, message: &Message) -> Admission {
        // One metadata read per message: the stopping state now, the log link for later.
        let metadata = match &self.metadata {
            Some(m) => m.read().await.ok(),
            None => None,
        };
        if metadata.as_ref().is_some_and(|m| m.stopping()) {
            return Admission::Leave("ECS is stopping this task".into());
        }
        if let Some(refusal) = self.check_ownership(message).await {
            return refusal;
        }
        let (job, token) = match admit::parse(message) {
            Ok(parsed) => parsed,
            Err(refusal) => return refusal,
        };
        if let Some(attini) = &job.attini {
            match self.is_current(attini).await {
                Ok(Some(false)) => {
                    return Admission::Fail {
                        token,
                        report: Report::failure(
                            STALE_EXECUTION,
                            format!(
                                "The execution {} is no longer the current deployment of {}; a newer execution replaced it, so the runner did not run this step.",
                                attini.execution_arn,
                                attini.deployment_name()
                            ),
                        ),
                    };
                }
                Ok(Some(true)) => {}
                Ok(None) => tracing::warn!(
                    deployment = attini.deployment_name(),
                    table = self.config.deploy_data_table,
                    "no current-deployment record (deploymentTime = 0 with executionArns); running the job"
                ),
                Err(e) => tracing::warn!(
                    error = e,
                    "cannot check the current deployment; running the job"
                ),
            }
            if attini.config_hash != self.config.config_hash {
                return Admission::Leave(format!(
                    "configuration hash {} is not this runner's {}: the runner started for it takes it",
                    attini.config_hash, self.config.config_hash
                ));
            }
        }
        let logs_url = metadata.and_then(|m| m.logs_url);
        admit::admit(job, token, &self.clients.s3, logs_url).await
    }
}
