//! The Attini poll filters (CONTRACT.md 5.4), per received message: ECS stopping -> leave it;
//! another task owns the runner item -> shut down and leave it; no permission to read the
//! item -> fail the job with `IllegalAccessException` and shut down; the item still unreadable
//! after two minutes of transient errors (throttling) -> leave the message and keep serving;
//! a job of an execution that is no longer the current deployment -> answer it as stale and
//! delete it; another configuration hash -> leave it for the new runner. The reads behind
//! these run concurrently (one round trip, not three in a row), and a runner item that named
//! this task within the last [`OWNER_FRESH`](super::ownership::OWNER_FRESH) is not read again
//! ([`super::ownership`] judges a read). Cancellation: dropping a decision leaves the message
//! in the queue.

use super::AttiniConfig;
use super::ownership::Ownership;
use crate::aws::Clients;
use crate::aws::dynamodb::{self, RunnerItem};
use crate::aws::ecs::Metadata;
use crate::engine::outcome::Report;
use crate::job::AttiniContext;
use crate::modes::admission::{self, Admitter};
use crate::worker::admit::parse_message;
use crate::worker::{Admission, CallError, Message, Policy};

/// Error name of a job whose execution is no longer the current deployment.
pub const STALE_EXECUTION: &str = "Runner.StaleExecution";

/// Decides about messages in Attini mode.
pub struct AttiniPolicy {
    config: AttiniConfig,
    clients: Clients,
    admitter: Admitter,
    metadata: Option<Metadata>,
    own_task: Option<String>,
    item: RunnerItem,
    /// When the runner item last named this task.
    ownership: Ownership,
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
        let admitter = Admitter::new(
            &clients,
            config.job_roles.clone(),
            config.refuse_literal_secrets,
            &config.queue_url,
        );
        AttiniPolicy {
            config,
            clients,
            admitter,
            metadata,
            own_task,
            item,
            ownership: Ownership::default(),
        }
    }

    /// `Some(refusal)` when this runner must not take jobs. An item that named this task less
    /// than [`OWNER_FRESH`](super::ownership::OWNER_FRESH) ago is not read again.
    async fn check_ownership(&self, message: &Message) -> Option<Admission> {
        let own = self.own_task.as_ref()?;
        if self.ownership.fresh() {
            return None;
        }
        let read = self.item.read(false).await;
        let table = &self.config.resource_state_table;
        self.ownership.judge(read, own, &message.body, table)
    }

    /// Whether the job's execution is the current deployment (`None`: cannot tell).
    async fn is_current(&self, attini: &AttiniContext) -> Result<Option<bool>, CallError> {
        dynamodb::is_current_execution(
            &self.clients.figures,
            &self.clients.dynamodb,
            &self.config.deploy_data_table,
            &attini.deployment_name(),
            &attini.execution_arn,
        )
        .await
    }

    /// The Attini filters of a parsed job, given what the deploy data said about its
    /// execution (`current`): a stale execution is failed, another configuration hash is left
    /// for its own runner; `None` lets the job run.
    fn filter(
        &self,
        attini: &AttiniContext,
        token: &str,
        current: Result<Option<bool>, CallError>,
    ) -> Option<Admission> {
        match current {
            Ok(Some(false)) => {
                return Some(Admission::Fail {
                    token: token.to_string(),
                    report: Report::failure(
                        STALE_EXECUTION,
                        format!(
                            "The execution {} is no longer the current deployment of {}; a newer execution replaced it, so the runner did not run this step.",
                            attini.execution_arn,
                            attini.deployment_name()
                        ),
                    ),
                });
            }
            Ok(Some(true)) => {}
            Ok(None) => tracing::warn!(
                deployment = attini.deployment_name(),
                table = self.config.deploy_data_table,
                "no current-deployment record (deploymentTime = 0 with executionArns); running the job"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot check the current deployment; running the job"
            ),
        }
        if attini.config_hash != self.config.config_hash {
            return Some(Admission::Leave(format!(
                "configuration hash {} is not this runner's {}: the runner started for it takes it",
                attini.config_hash, self.config.config_hash
            )));
        }
        None
    }
}

impl Policy for AttiniPolicy {
    /// The three reads (task metadata, runner item, deploy data) go out at once; their
    /// answers are weighed in the order of CONTRACT.md 5.4.
    async fn admit(&self, message: &Message) -> Admission {
        let parsed = parse_message(message);
        let attini = parsed
            .as_ref()
            .ok()
            .and_then(|(job, _)| job.attini.as_ref());
        // One metadata read per message: the stopping state now, the log link for later.
        let metadata = async {
            match &self.metadata {
                Some(m) => m.read().await.ok(),
                None => None,
            }
        };
        let current = async {
            match attini {
                Some(attini) => Some(self.is_current(attini).await),
                None => None,
            }
        };
        let (metadata, ownership, current) =
            tokio::join!(metadata, self.check_ownership(message), current);
        if metadata.as_ref().is_some_and(|m| m.stopping()) {
            return Admission::Leave("ECS is stopping this task".into());
        }
        if let Some(refusal) = ownership {
            return refusal;
        }
        let (job, token) = match parsed {
            Ok(parsed) => parsed,
            Err(refusal) => return refusal,
        };
        if let (Some(attini), Some(current)) = (&job.attini, current)
            && let Some(refusal) = self.filter(attini, &token, current)
        {
            return refusal;
        }
        let logs_url = metadata.and_then(|m| m.logs_url);
        admission::resolve(job, token, &self.admitter, logs_url).await
    }
}
