//! The failure of a call to a service the runner talks to (queue, task tokens, log store,
//! distributions, tables), sorted into classes the callers act on, with the error it came from
//! as its source, and the retry of transient ones. The bottom floor: every other one may use
//! it.
//!
//! Throttling, 5xx, timeouts and connection errors are transient: retried with jittered
//! exponential backoff until a deadline. A closed task token (`TaskTimedOut`, `InvalidToken`,
//! `TaskDoesNotExist`) means the Step Functions task is gone. Access denied and a missing
//! queue are fatal for the runner and follow the documented shutdown. The AWS layer
//! classifies SDK errors into these ([`crate::aws::error`]). Cancellation: dropping
//! [`with_backoff`] stops between attempts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// What kind of failure an AWS call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later: throttling, 5xx, timeouts, connection errors.
    Transient,
    /// The task token is closed: the execution stopped, timed out or never existed.
    TaskGone,
    /// The role lacks a permission.
    Denied,
    /// The queue (or another named resource) does not exist.
    Missing,
    /// Anything else: a bad request; retrying will not help.
    Permanent,
}

/// A classified failed call with a one-line description, and the error it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct CallError {
    /// What was being done, e.g. `SendTaskSuccess`.
    pub operation: &'static str,
    /// The kind of failure.
    pub class: ErrorClass,
    /// The service's error code and message, or the transport error.
    pub message: String,
    /// The error the call failed with (the SDK's), when there is one.
    #[source]
    pub source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Two failures are the same when they say the same; their sources are not compared.
impl PartialEq for CallError {
    fn eq(&self, other: &Self) -> bool {
        (self.operation, self.class, &self.message)
            == (other.operation, other.class, &other.message)
    }
}

impl Eq for CallError {}

/// Retries `call` while it fails with a transient error, with jittered exponential backoff
/// (0.2 s doubling to 20 s), until `deadline` has passed; returns the last result.
pub async fn with_backoff<T, F, Fut>(deadline: Duration, mut call: F) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let give_up = Instant::now() + deadline;
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Err(e) if e.class == ErrorClass::Transient && Instant::now() < give_up => {
                let jittered = delay.mul_f64(0.5 + fastrand::f64());
                tracing::warn!(operation = e.operation, error = %e.message, retry_in_ms = jittered.as_millis() as u64, "transient error; retrying");
                sleep(jittered.min(give_up.saturating_duration_since(Instant::now()))).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
            other => return other,
        }
    }
}

impl CallError {
    /// A transient failure of `operation` (a timeout, a dropped connection).
    pub fn transient(operation: &'static str, message: impl Into<String>) -> Self {
        CallError {
            operation,
            class: ErrorClass::Transient,
            message: message.into(),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let mut calls = 0;
        let result = with_backoff(Duration::from_secs(60), || {
            calls += 1;
            let attempt = calls;
            async move {
                if attempt < 4 {
                    Err(CallError {
                        operation: "Op",
                        class: ErrorClass::Transient,
                        message: "503".into(),
                        source: None,
                    })
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
        assert_eq!(result, Ok(4));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = with_backoff(Duration::from_secs(60), || {
            calls += 1;
            async {
                Err(CallError {
                    operation: "Op",
                    class: ErrorClass::Permanent,
                    message: "bad".into(),
                    source: None,
                })
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
