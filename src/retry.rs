//! How AWS errors are classified and how transient ones are retried.
//!
//! Throttling, 5xx and connection errors are transient: retried with jittered exponential
//! backoff until a deadline. A closed task token (`TaskTimedOut`, `InvalidToken`,
//! `TaskDoesNotExist`) means the Step Functions task is gone. Access denied and a missing
//! queue are fatal for the runner and follow the documented shutdown. Cancellation: dropping
//! [`with_backoff`] stops between attempts.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use tokio::time::{Instant, sleep};

/// What kind of failure an AWS call had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
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

/// A classified AWS error with a one-line description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct AwsError {
    /// What was being done, e.g. `SendTaskSuccess`.
    pub operation: &'static str,
    /// The kind of failure.
    pub class: Class,
    /// The service's error code and message, or the transport error.
    pub message: String,
}

/// Classifies an SDK error of any service.
pub fn classify<E>(operation: &'static str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (class, message) = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (Class::Transient, error_chain(err))
        }
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let text = e.message().unwrap_or_default();
            let status = service.raw().status().as_u16();
            (
                class_of(code, text, Some(status)),
                format!("{code}: {text}"),
            )
        }
        _ => (Class::Permanent, error_chain(err)),
    };
    AwsError {
        operation,
        class,
        message,
    }
}

fn class_of(code: &str, text: &str, status: Option<u16>) -> Class {
    match code {
        "TaskTimedOut" | "InvalidToken" | "TaskDoesNotExist" => Class::TaskGone,
        "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist"
        | "ResourceNotFoundException"
        | "NoSuchBucket"
        | "NoSuchKey"
        | "NotFound" => Class::Missing,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "KMS.AccessDeniedException" => Class::Denied,
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "SlowDown"
        | "ServiceUnavailable"
        | "InternalError"
        | "InternalFailure"
        | "InternalServerError"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "KmsThrottled" => Class::Transient,
        _ if text.contains("Access to the resource") && text.contains("is denied") => Class::Denied,
        _ if status.is_some_and(|s| s >= 500 || s == 429) => Class::Transient,
        _ => Class::Permanent,
    }
}

/// The error and its sources, joined, for transport errors whose top message is vague.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Retries `call` while it fails with a transient error, with jittered exponential backoff
/// (0.2 s doubling to 20 s), until `deadline` has passed; returns the last result.
pub async fn with_backoff<T, F, Fut>(deadline: Duration, mut call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AwsError>>,
{
    let give_up = Instant::now() + deadline;
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Err(e) if e.class == Class::Transient && Instant::now() < give_up => {
                let jittered = delay.mul_f64(0.5 + fastrand::f64());
                tracing::warn!(operation = e.operation, error = %e.message, retry_in_ms = jittered.as_millis() as u64, "transient AWS error; retrying");
                sleep(jittered.min(give_up.saturating_duration_since(Instant::now()))).await;
                delay = (delay * 2).min(Duration::from_secs(20));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(class_of("TaskTimedOut", "", Some(400)), Class::TaskGone);
        assert_eq!(class_of("InvalidToken", "", Some(400)), Class::TaskGone);
        assert_eq!(class_of("TaskDoesNotExist", "", Some(400)), Class::TaskGone);
        assert_eq!(
            class_of("AWS.SimpleQueueService.NonExistentQueue", "", Some(400)),
            Class::Missing
        );
        assert_eq!(class_of("QueueDoesNotExist", "", Some(400)), Class::Missing);
        assert_eq!(
            class_of("Whatever", "Access to the resource x is denied.", Some(403)),
            Class::Denied
        );
        assert_eq!(
            class_of("ThrottlingException", "", Some(400)),
            Class::Transient
        );
        assert_eq!(class_of("Odd", "", Some(503)), Class::Transient);
        assert_eq!(
            class_of("ValidationException", "", Some(400)),
            Class::Permanent
        );
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let mut calls = 0;
        let result = with_backoff(Duration::from_secs(60), || {
            calls += 1;
            let attempt = calls;
            async move {
                if attempt < 4 {
                    Err(AwsError {
                        operation: "Op",
                        class: Class::Transient,
                        message: "503".into(),
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
                Err(AwsError {
                    operation: "Op",
                    class: Class::Permanent,
                    message: "bad".into(),
                })
            }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }
}
