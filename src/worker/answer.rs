//! Answering a job's task token: `SendTaskSuccess` / `SendTaskFailure` with the engine's
//! [`Report`]. Transient errors are retried with backoff for up to [`REPORT_DEADLINE`]; a
//! closed token (execution stopped or timed out) is logged and counts as answered.
//! Cancellation: dropping the future abandons the report.

use std::time::Duration;

use super::TaskTokens;
use super::retry::{self, CallError, ErrorClass};
use crate::engine::outcome::Report;

/// How long a report is retried through transient errors: ten minutes.
pub const REPORT_DEADLINE: Duration = Duration::from_secs(600);

/// Longest error name Step Functions accepts, in characters.
const MAX_ERROR_CHARS: usize = 256;

/// What became of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Step Functions accepted it.
    Accepted,
    /// The task no longer exists (stopped or timed out execution); nothing to answer.
    TaskGone(String),
    /// It could not be delivered.
    Failed(CallError),
}

impl Delivery {
    /// True unless the report failed: the task got its answer or no longer needs one.
    pub fn is_answered(&self) -> bool {
        !matches!(self, Delivery::Failed(_))
    }
}

/// Sends `report` for `token` through `tokens`, retrying transient errors.
pub async fn deliver(tokens: &impl TaskTokens, token: &str, report: &Report) -> Delivery {
    let result = retry::with_backoff(REPORT_DEADLINE, || async {
        match report {
            Report::Success { output } => tokens.succeed(token, output).await,
            Report::Failure { error, cause } => {
                let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
                tokens.fail(token, &error, cause).await
            }
        }
    })
    .await;
    match result {
        Ok(()) => Delivery::Accepted,
        Err(e) if e.class == ErrorClass::TaskGone => {
            tracing::info!(error = %e, "the task was already closed (execution stopped or timed out); nothing reported");
            Delivery::TaskGone(e.message)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not report the job to Step Functions");
            Delivery::Failed(e)
        }
    }
}
