//! Classifying AWS SDK errors of any service into the worker's [`ErrorClass`]es: service
//! error codes (throttling, closed task tokens, access denied, missing resources), HTTP
//! status, and transport failures (timeouts, connection errors) as transient. Pure; nothing
//! to cancel.

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use crate::calls::{CallError, ErrorClass};
use crate::metrics::{AwsErrorLabels, Figures};

/// Classifies an SDK error of any service, keeps it as the failure's source, and counts it in
/// the metrics.
pub fn classify<E>(
    figures: &Figures,
    operation: &'static str,
    err: SdkError<E, HttpResponse>,
) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (class, message) = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            (ErrorClass::Transient, error_chain(&err))
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
        _ => (ErrorClass::Permanent, error_chain(&err)),
    };
    CallError {
        source: Some(std::sync::Arc::new(err)),
        ..counted(figures, operation, class, message)
    }
}

/// Classifies one failed entry of a batch request (its error `code` and `text`), and counts
/// it in the metrics.
pub fn classify_entry(
    figures: &Figures,
    operation: &'static str,
    code: &str,
    text: &str,
) -> CallError {
    counted(
        figures,
        operation,
        class_of(code, text, None),
        format!("{code}: {text}"),
    )
}

/// The error, counted in `figures`.
fn counted(
    figures: &Figures,
    operation: &'static str,
    class: ErrorClass,
    message: String,
) -> CallError {
    figures.aws_error(AwsErrorLabels {
        service: service_of(operation),
        operation,
        class: class_label(class),
    });
    CallError {
        operation,
        class,
        message,
        source: None,
    }
}

/// The service an operation of this runner belongs to, for the metrics.
fn service_of(operation: &str) -> &'static str {
    match operation {
        "ReceiveMessage"
        | "DeleteMessage"
        | "DeleteMessageBatch"
        | "ChangeMessageVisibility"
        | "ChangeMessageVisibilityBatch" => "sqs",
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => "sfn",
        "HeadObject" | "GetObject" | "PutObject" => "s3",
        "GetItem" | "PutItem" | "UpdateItem" => "dynamodb",
        "GetSecretValue" => "secretsmanager",
        "GetParameter" => "ssm",
        _ => "other",
    }
}

/// The metrics label of an error class.
pub fn class_label(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Transient => "transient",
        ErrorClass::TaskGone => "task_gone",
        ErrorClass::Denied => "denied",
        ErrorClass::Missing => "missing",
        ErrorClass::Permanent => "permanent",
    }
}

fn class_of(code: &str, text: &str, status: Option<u16>) -> ErrorClass {
    match code {
        "TaskTimedOut" | "InvalidToken" | "TaskDoesNotExist" => ErrorClass::TaskGone,
        "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist"
        | "ResourceNotFoundException"
        | "ParameterNotFound"
        | "NoSuchBucket"
        | "NoSuchKey"
        | "NotFound" => ErrorClass::Missing,
        "AccessDenied"
        | "AccessDeniedException"
        | "UnauthorizedOperation"
        | "KMS.AccessDeniedException" => ErrorClass::Denied,
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
        | "KmsThrottled" => ErrorClass::Transient,
        _ if text.contains("Access to the resource") && text.contains("is denied") => {
            ErrorClass::Denied
        }
        // KMS.ThrottlingException and the other throttles of any service.
        _ if code.contains("Throttl") => ErrorClass::Transient,
        _ if status.is_some_and(|s| s >= 500 || s == 429) => ErrorClass::Transient,
        // A HEAD answer has no body to name its error.
        _ if status == Some(403) => ErrorClass::Denied,
        _ => ErrorClass::Permanent,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(
            class_of("TaskTimedOut", "", Some(400)),
            ErrorClass::TaskGone
        );
        assert_eq!(
            class_of("InvalidToken", "", Some(400)),
            ErrorClass::TaskGone
        );
        assert_eq!(
            class_of("TaskDoesNotExist", "", Some(400)),
            ErrorClass::TaskGone
        );
        assert_eq!(
            class_of("AWS.SimpleQueueService.NonExistentQueue", "", Some(400)),
            ErrorClass::Missing
        );
        assert_eq!(
            class_of("QueueDoesNotExist", "", Some(400)),
            ErrorClass::Missing
        );
        assert_eq!(
            class_of("Whatever", "Access to the resource x is denied.", Some(403)),
            ErrorClass::Denied
        );
        assert_eq!(
            class_of("ThrottlingException", "", Some(400)),
            ErrorClass::Transient
        );
        assert_eq!(class_of("Odd", "", Some(503)), ErrorClass::Transient);
        assert_eq!(
            class_of("KMS.ThrottlingException", "", Some(400)),
            ErrorClass::Transient
        );
        assert_eq!(
            class_of("ValidationException", "", Some(400)),
            ErrorClass::Permanent
        );
    }
}
