//! Answering a job's task token: `SendTaskSuccess` / `SendTaskFailure` with the engine's
//! [`Report`]. Transient errors are retried with backoff for up to [`REPORT_DEADLINE`]; a
//! closed token (execution stopped or timed out) counts as answered. A report Step Functions
//! rejects for good (a malformed output, a missing permission) is not retried: an output it
//! refuses is replaced by a `RuntimeError` failure saying why, and what still cannot be
//! delivered is logged as an error and counts as answered, so that its message is deleted
//! instead of running the job again and again. Cancellation: dropping the future abandons the
//! report.

use crate::metrics::ReportResult;
use std::time::Duration;

use super::TaskTokens;
use crate::calls::{self, CallError, ErrorClass};
use crate::engine::outcome::{RUNTIME_ERROR, Report};

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
    /// Step Functions refused it for good; retrying would not help.
    Rejected(CallError),
    /// It could not be delivered within the deadline (Step Functions unreachable).
    Failed(CallError),
}

impl Delivery {
    /// True unless the report could not be delivered for now: the task got its answer, no
    /// longer needs one, or can never get one from this runner.
    pub fn is_answered(&self) -> bool {
        !matches!(self, Delivery::Failed(_))
    }
}

/// Sends `report` for `token` through `tokens`, counted in `figures`; see the module
/// documentation.
pub async fn deliver(
    tokens: &impl TaskTokens,
    token: &str,
    report: &Report,
    figures: &crate::metrics::Figures,
) -> Delivery {
    let delivery = send(tokens, token, report).await;
    let delivery = match (&delivery, report) {
        (Delivery::Rejected(e), Report::Success { .. }) if e.class == ErrorClass::Permanent => {
            let failure = Report::failure(
                RUNTIME_ERROR,
                format!("The job succeeded but Step Functions refused its output: {e}"),
            );
            send(tokens, token, &failure).await
        }
        _ => delivery,
    };
    figures.report(match &delivery {
        Delivery::Accepted => ReportResult::Accepted,
        Delivery::TaskGone(_) => ReportResult::TaskGone,
        Delivery::Rejected(_) => ReportResult::Rejected,
        Delivery::Failed(_) => ReportResult::Undelivered,
    });
    delivery
}

async fn send(tokens: &impl TaskTokens, token: &str, report: &Report) -> Delivery {
    let result = calls::with_backoff(REPORT_DEADLINE, || async {
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
        Err(e) if e.class == ErrorClass::Transient => {
            tracing::error!(error = %e, "could not report the job to Step Functions");
            Delivery::Failed(e)
        }
        Err(e) => {
            tracing::error!(error = %e, "Step Functions refused the report for good; the job's message is deleted, the execution learns nothing from this runner");
            Delivery::Rejected(e)
        }
    }
}
