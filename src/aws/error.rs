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

    #[test]
    fn every_operation_is_labelled_with_its_service_and_every_class_with_its_name() {
        let services = [
            ("ReceiveMessage", "sqs"),
            ("DeleteMessage", "sqs"),
            ("DeleteMessageBatch", "sqs"),
            ("ChangeMessageVisibility", "sqs"),
            ("ChangeMessageVisibilityBatch", "sqs"),
            ("SendTaskSuccess", "sfn"),
            ("SendTaskFailure", "sfn"),
            ("SendTaskHeartbeat", "sfn"),
            ("HeadObject", "s3"),
            ("GetObject", "s3"),
            ("PutObject", "s3"),
            ("GetItem", "dynamodb"),
            ("PutItem", "dynamodb"),
            ("UpdateItem", "dynamodb"),
            ("GetSecretValue", "secretsmanager"),
            ("GetParameter", "ssm"),
            ("FilterLogEvents", "other"),
        ];
        for (operation, service) in services {
            assert_eq!(service_of(operation), service, "{operation}");
        }
        let labels = [
            ErrorClass::Transient,
            ErrorClass::TaskGone,
            ErrorClass::Denied,
            ErrorClass::Missing,
            ErrorClass::Permanent,
        ]
        .map(class_label);
        assert_eq!(
            labels,
            ["transient", "task_gone", "denied", "missing", "permanent"]
        );
    }

    #[test]
    fn every_denial_code_is_denied() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "UnauthorizedOperation",
            "KMS.AccessDeniedException",
        ] {
            assert_eq!(class_of(code, "", Some(400)), ErrorClass::Denied, "{code}");
        }
    }

    #[test]
    fn sdk_errors_are_classified_kept_as_their_source_and_counted() {
        use aws_sdk_sqs::error::ErrorMetadata;
        use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
        use aws_smithy_types::body::SdkBody;
        type Error = SdkError<ReceiveMessageError, HttpResponse>;
        let figures = Figures::default();
        let timeout: Error = SdkError::timeout_error("slow network");
        let e = classify(&figures, "ReceiveMessage", timeout);
        assert_eq!(e.class, ErrorClass::Transient);
        assert!(e.message.contains("slow network"), "{}", e.message);
        assert!(e.source.is_some());
        let meta = ErrorMetadata::builder()
            .code("AccessDenied")
            .message("no sqs:ReceiveMessage")
            .build();
        let raw = HttpResponse::new(403.try_into().unwrap(), SdkBody::empty());
        let denied: Error = SdkError::service_error(ReceiveMessageError::generic(meta), raw);
        let e = classify(&figures, "ReceiveMessage", denied);
        assert_eq!(e.class, ErrorClass::Denied);
        assert_eq!(e.message, "AccessDenied: no sqs:ReceiveMessage");
        assert!(e.source.is_some());
        let reading = figures.reading();
        let counted = |class| {
            reading.total(
                "attini_runner_aws_errors_total",
                &[
                    ("service", "sqs"),
                    ("operation", "ReceiveMessage"),
                    ("class", class),
                ],
            )
        };
        assert_eq!((counted("transient"), counted("denied")), (1.0, 1.0));
    }

    #[test]
    fn throttles_and_server_errors_are_transient_and_a_bare_403_is_denied() {
        for code in [
            "Throttling",
            "ThrottledException",
            "RequestThrottled",
            "TooManyRequestsException",
            "ProvisionedThroughputExceededException",
            "SlowDown",
            "ServiceUnavailable",
            "InternalError",
            "InternalFailure",
            "InternalServerError",
            "RequestTimeout",
            "RequestTimeoutException",
            "KmsThrottled",
        ] {
            assert_eq!(
                class_of(code, "", Some(400)),
                ErrorClass::Transient,
                "{code}"
            );
        }
        assert_eq!(class_of("Odd", "", Some(429)), ErrorClass::Transient);
        assert_eq!(class_of("", "", Some(403)), ErrorClass::Denied);
        assert_eq!(class_of("Odd", "", Some(404)), ErrorClass::Permanent);
        // Both halves of the denial text are needed.
        assert_eq!(
            class_of("Odd", "Access to the resource x", Some(400)),
            ErrorClass::Permanent
        );
        assert_eq!(
            class_of("Odd", "it is denied", Some(400)),
            ErrorClass::Permanent
        );
    }

    #[test]
    fn a_transport_errors_text_joins_its_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dispatch failure")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&err), "dispatch failure: connection refused");
    }
}
