//! Answers task tokens: `SendTaskSuccess` / `SendTaskFailure` with the engine's payloads.
//! Transient errors are retried with backoff for up to ten minutes; a closed token
//! (`TaskTimedOut`, `InvalidToken`, `TaskDoesNotExist`) is logged and counts as done.
//! Cancellation: dropping the future abandons the report.

use std::time::Duration;

use crate::report::Report;
use crate::retry::{self, AwsError, Class};

/// How long a report is retried through transient errors.
pub const REPORT_DEADLINE: Duration = Duration::from_secs(600);

/// What became of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Step Functions accepted it.
    Accepted,
    /// The task no longer exists (stopped or timed out execution); nothing to answer.
    TaskGone(String),
    /// It could not be delivered.
    Failed(AwsError),
}

/// Sends `report` for `token`.
pub async fn send(sfn: &aws_sdk_sfn::Client, token: &str, report: &Report) -> Delivery {
    let result = retry::with_backoff(REPORT_DEADLINE, || async {
        match report {
            Report::Success { output } => sfn
                .send_task_success()
                .task_token(token)
                .output(output)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| retry::classify("SendTaskSuccess", &e)),
            Report::Failure { error, cause } => sfn
                .send_task_failure()
                .task_token(token)
                .error(truncate(error, 256))
                .cause(cause)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| retry::classify("SendTaskFailure", &e)),
        }
    })
    .await;
    match result {
        Ok(()) => Delivery::Accepted,
        Err(e) if e.class == Class::TaskGone => {
            tracing::info!(error = %e, "the task was already closed (execution stopped or timed out); nothing reported");
            Delivery::TaskGone(e.message)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not report the job to Step Functions");
            Delivery::Failed(e)
        }
    }
}

fn truncate(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}
