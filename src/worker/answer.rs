//! Answering a job's task token: `SendTaskSuccess` / `SendTaskFailure` with the engine's
//! [`Report`]. Transient errors are retried with backoff for up to [`Retries::transient`]; a
//! closed token (execution stopped or timed out) counts as answered. A denied report
//! (`AccessDenied`, or a resource Step Functions says is missing) is retried for up to
//! [`Retries::refused`], since a role's new permission takes seconds to minutes to propagate
//! in IAM; it is logged once, naming the permission to add, and if it is still denied the
//! report counts as undelivered: its message is left for redelivery or the dead-letter queue,
//! never deleted unanswered. A report Step Functions rejects for good (a malformed output) is
//! not retried: an output it refuses is replaced by a `RuntimeError` failure saying why, and
//! what still cannot be delivered is logged as an error and counts as answered, so that its
//! message is deleted instead of running the job again and again. The caller's lease keeps
//! the message while this runs. Cancellation: dropping the future abandons the report.

use crate::metrics::ReportResult;
use std::time::Duration;

use super::TaskTokens;
use crate::calls::{self, CallError, ErrorClass};
use crate::engine::outcome::{RUNTIME_ERROR, Report};

/// How long a report is retried through transient errors: ten minutes.
pub const REPORT_DEADLINE: Duration = Duration::from_secs(600);
/// How long a denied report is retried by default (`ATTINI_REPORT_DENIED_RETRY`): five minutes.
pub const DENIED_RETRY: Duration = Duration::from_secs(300);
/// Longest wait between two tries of a denied report.
const DENIED_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long a report is retried, by the kind of error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries {
    /// Through transient errors (throttling, timeouts, 5xx): default [`REPORT_DEADLINE`].
    pub transient: Duration,
    /// Through denials and missing resources: default [`DENIED_RETRY`].
    pub refused: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries {
            transient: REPORT_DEADLINE,
            refused: DENIED_RETRY,
        }
    }
}

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
    /// It could not be delivered within its retries (Step Functions unreachable, or the
    /// report still denied): the message stays for redelivery.
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
    retries: Retries,
) -> Delivery {
    let delivery = send(tokens, token, report, retries).await;
    let delivery = match (&delivery, report) {
        // `Rejected` is only ever a permanent refusal (see `send`), such as an output too large.
        (Delivery::Rejected(e), Report::Success { .. }) => {
            let failure = Report::failure(
                RUNTIME_ERROR,
                format!("The job succeeded but Step Functions refused its output: {e}"),
            );
            send(tokens, token, &failure, retries).await
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

async fn send(
    tokens: &impl TaskTokens,
    token: &str,
    report: &Report,
    retries: Retries,
) -> Delivery {
    let refused_until = tokio::time::Instant::now() + retries.refused;
    let mut told = false;
    let mut delay = Duration::from_secs(1);
    let result = loop {
        let result = calls::with_backoff(retries.transient, || async {
            match report {
                Report::Success { output } => tokens.succeed(token, output).await,
                Report::Failure { error, cause } => {
                    let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
                    tokens.fail(token, &error, cause).await
                }
            }
        })
        .await;
        let left = refused_until.saturating_duration_since(tokio::time::Instant::now());
        match result {
            Err(e) if is_refusal(&e) && !left.is_zero() => {
                if !told {
                    told = true;
                    tracing::error!(
                        error = %e,
                        retry_for_s = left.as_secs(),
                        "Step Functions denied the report: the runner's role needs states:SendTaskSuccess, \
                         states:SendTaskFailure and states:SendTaskHeartbeat on the state machine. Retrying \
                         while IAM changes propagate; then the message is left for redelivery (or the \
                         dead-letter queue), never deleted unanswered"
                    );
                }
                let jittered = delay.mul_f64(0.5 + fastrand::f64());
                tokio::time::sleep(jittered.min(left)).await;
                delay = (delay * 2).min(DENIED_BACKOFF_MAX);
            }
            other => break other,
        }
    };
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
        Err(e) if is_refusal(&e) => {
            tracing::error!(
                error = %e,
                retried_s = retries.refused.as_secs(),
                "the report is still denied: its message is left for redelivery (or the dead-letter queue)"
            );
            Delivery::Failed(e)
        }
        Err(e) => {
            tracing::error!(error = %e, "Step Functions refused the report for good; the job's message is deleted, the execution learns nothing from this runner");
            Delivery::Rejected(e)
        }
    }
}

/// A denial or a missing resource: may pass once IAM or the account catches up.
fn is_refusal(e: &CallError) -> bool {
    matches!(e.class, ErrorClass::Denied | ErrorClass::Missing)
}
