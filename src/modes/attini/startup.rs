//! The start of an Attini runner (CONTRACT.md 4.4 to 4.6): own task ARN from the ECS metadata,
//! the conditional `SET started = true WHERE taskId = <own ARN>`, then the startup commands of
//! the resource-state item, run like a job in the runner's directory with their own timeout.
//! A failure is a [`StartError`], whose text is the cause sent as `Startup tasks failed`.
//! Cancellation: dropping the future kills the startup commands' bash (`kill_on_drop`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::AttiniConfig;
use crate::aws::Clients;
use crate::aws::dynamodb::{self, Started};
use crate::aws::ecs::{Metadata, MetadataError};
use crate::engine::executor::Termination;
use crate::engine::outcome::Report;
use crate::engine::{Engine, RunOptions};
use crate::job::{JobFormat, JobSpec};
use crate::worker::CallError;
use crate::worker::joblog::JobLog;

/// Why the runner could not start; the text is the cause reported to the start token.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The ECS container metadata could not be read.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The metadata has no task ARN label.
    #[error("the ECS container metadata has no com.amazonaws.ecs.task-arn label")]
    NoTaskArn,
    /// The conditional `started` update failed.
    #[error(
        "Could not mark the runner as started in {table}: {source}. The runner's role needs dynamodb:UpdateItem on it."
    )]
    MarkStarted {
        /// The resource-state table.
        table: String,
        /// The DynamoDB error.
        source: CallError,
    },
    /// The runner's item could not be read.
    #[error("Could not read the runner's resource state: {0}")]
    ReadItem(CallError),
    /// The startup commands exited with a code other than 0 (the Attini Runner's words).
    #[error("Startup script finished with exit code = {code}.{see_logs}")]
    ExitCode {
        /// The exit code.
        code: i32,
        /// ` See complete logs at: <url>`, or nothing.
        see_logs: String,
    },
    /// The startup commands ran out of time (the Attini Runner's words).
    #[error("Script timed out after {seconds} seconds.{see_logs}")]
    TimedOut {
        /// The timeout, in seconds.
        seconds: u64,
        /// ` See complete logs at: <url>`, or nothing.
        see_logs: String,
    },
    /// The startup commands failed otherwise (they could not start, say).
    #[error("Startup commands failed: {cause}")]
    Failed {
        /// The engine's cause.
        cause: String,
    },
    /// A stop signal ended the startup commands.
    #[error("The runner was stopped while its startup commands ran; they were ended.{see_logs}")]
    Interrupted {
        /// ` See complete logs at: <url>`, or nothing.
        see_logs: String,
    },
}

/// Starts the runner; returns its own task ARN (when ECS metadata is available).
pub async fn start(
    config: &AttiniConfig,
    clients: &Clients,
    metadata: Option<&Metadata>,
    engine: &Arc<Engine>,
    cancel: &CancellationToken,
) -> Result<Option<String>, StartError> {
    let (own, logs_url) = match metadata {
        Some(m) => {
            let meta = m.read().await?;
            let arn = meta.task_arn.ok_or(StartError::NoTaskArn)?;
            (Some(arn), meta.logs_url)
        }
        None => {
            tracing::warn!(
                "ECS_CONTAINER_METADATA_URI_V4 is not set: not running on ECS, so the started flag and the taskId check are skipped"
            );
            (None, None)
        }
    };
    let item = config.runner_item(clients);
    if let Some(arn) = &own {
        match item.mark_started(arn).await {
            Ok(Started::Marked) => tracing::info!(task = arn, "marked as started"),
            Ok(Started::OtherTask) => tracing::warn!(
                task = arn,
                "the resource state names another task: this runner is probably redundant"
            ),
            Err(source) => {
                return Err(StartError::MarkStarted {
                    table: config.resource_state_table.clone(),
                    source,
                });
            }
        }
    }
    let item = item.read(true).await.map_err(StartError::ReadItem)?;
    let text = |name: &str| dynamodb::text(&item, name).cloned().unwrap_or_default();
    let commands: Vec<String> = item
        .get("startupCommands")
        .and_then(|v| v.as_l().ok())
        .map(|l| l.iter().filter_map(|c| c.as_s().ok().cloned()).collect())
        .unwrap_or_default();
    if commands.is_empty() {
        return Ok(own);
    }
    let environment = BTreeMap::from([
        ("ATTINI_ENVIRONMENT_NAME".to_string(), text("environment")),
        (
            "ATTINI_DISTRIBUTION_NAME".to_string(),
            text("distributionName"),
        ),
    ]);
    run_startup_commands(commands, environment, config, engine, logs_url, cancel).await?;
    Ok(own)
}

async fn run_startup_commands(
    commands: Vec<String>,
    environment: BTreeMap<String, String>,
    config: &AttiniConfig,
    engine: &Arc<Engine>,
    logs_url: Option<String>,
    cancel: &CancellationToken,
) -> Result<(), StartError> {
    tracing::info!(count = commands.len(), "running the startup commands");
    let job = JobSpec {
        format: JobFormat::Native,
        kind: crate::job::JobKind::Commands,
        token: None,
        step_name: Some("startup".into()),
        commands,
        environment,
        secret_environment: BTreeMap::new(),
        secret_references: BTreeMap::new(),
        input: Value::Object(Default::default()),
        distribution: None,
        working_directory: None,
        timeout: Some(config.startup_timeout),
        heartbeat: None,
        expected: None,
        interruptible: true,
        lock: None,
        caches: Vec::new(),
        workspace_caches: Vec::new(),
        role: None,
        execution: None,
        attini: None,
    };
    let options = RunOptions {
        cwd: std::env::current_dir().ok(),
        ..RunOptions::default()
    };
    let log = JobLog::start("startup".into(), None);
    let result = engine.run(&job, &options, log.sink(), cancel).await;
    // Started once: its folder is gone before the runner goes on (or exits on its failure).
    tokio::join!(log.finish(), engine.settled());
    let see_logs = logs_url
        .map(|u| format!(" See complete logs at: {u}"))
        .unwrap_or_default();
    let termination = result.execution.as_ref().map(|e| &e.termination);
    Err(match (&result.report, termination) {
        (Report::Success { .. }, _) => return Ok(()),
        (_, Some(Termination::Cancelled)) | (_, None) if cancel.is_cancelled() => {
            StartError::Interrupted { see_logs }
        }
        (_, Some(Termination::Exited(code))) => StartError::ExitCode {
            code: *code,
            see_logs,
        },
        (_, Some(Termination::TimedOut(after))) => StartError::TimedOut {
            seconds: after.as_secs(),
            see_logs,
        },
        (Report::Failure { cause, .. }, _) => StartError::Failed {
            cause: cause.clone(),
        },
    })
}
