//! What a mode's [`Policy`] decides about a received message ([`Admission`]), the job it lets
//! run ([`Admitted`]), and the parsing step every policy starts with ([`parse_message`]): a
//! bad job is answered with a clear failure when its token can be read, otherwise deleted
//! with an error log. Plain data and pure parsing; nothing to cancel.

use std::future::Future;
use std::sync::Arc;

use super::Message;
use super::joblog::LogStore;
use crate::engine::distribution::Source;
use crate::engine::outcome::{RUNTIME_ERROR, Report};
use crate::engine::redact::Redactor;
use crate::job::{self, JobSpec};

/// A job ready to run.
pub struct Admitted {
    /// The job; its token is present.
    pub job: JobSpec,
    /// Its token.
    pub token: String,
    /// Its distribution, if any.
    pub source: Option<Source>,
    /// Where its log object goes, if anywhere.
    pub log_store: Option<Arc<dyn LogStore>>,
    /// Where the complete log can be read, for failure causes.
    pub logs_at: Option<String>,
}

/// What to do with a received message.
pub enum Admission {
    /// Run it.
    Run(Box<Admitted>),
    /// Leave it in the queue: it reappears after its visibility timeout (another runner's job).
    Leave(String),
    /// Delete it without answering (no token to answer); the reason is logged as an error.
    Delete(String),
    /// Answer its token with this failure and delete it.
    Fail {
        /// The token to answer.
        token: String,
        /// The failure.
        report: Report,
    },
    /// Stop this runner; the message stays in the queue.
    Shutdown(String),
    /// Answer the token with this failure, delete the message and stop this runner.
    FailAndShutdown {
        /// The token to answer.
        token: String,
        /// The failure.
        report: Report,
        /// Why the runner stops.
        reason: String,
    },
}

/// Decides about messages. Implemented by each AWS mode (Attini filters, native jobs).
pub trait Policy: Send + Sync + 'static {
    /// The decision for one message.
    fn admit(&self, message: &Message) -> impl Future<Output = Admission> + Send;
}

/// How much of an unparsable body is quoted in the error log.
const QUOTED_CHARS: usize = 200;

/// The job and its token, or the admission that refuses it.
pub fn parse_message(message: &Message) -> Result<(JobSpec, String), Admission> {
    match job::parse(&message.body) {
        Ok(job) => match job.token.clone() {
            Some(token) => Ok((job, token)),
            None => Err(Admission::Delete(
                "the job has no task token (`taskToken`, or `deploymentPlanExecutionMetadata.sfnToken`), so it cannot be answered".into(),
            )),
        },
        Err(e) => Err(match job::salvage_token(&message.body) {
            Some(token) => Admission::Fail {
                token,
                report: Report::failure(RUNTIME_ERROR, format!("The job message is invalid: {e}")),
            },
            None => {
                // Redacted whole before it is cut, so that no secret is cut in two.
                let redacted = body_redactor(&message.body).redact(&message.body);
                let start: String = redacted.chars().take(QUOTED_CHARS).collect();
                Admission::Delete(format!(
                    "the message is not a job ({e}) and carries no task token to answer; body starts with {start:?}"
                ))
            }
        }),
    }
}

/// A redactor for an unparsable body: the runner's own secrets, access key ids, and the values
/// of a `secretEnvironment` object if the body is JSON enough to have one.
fn body_redactor(body: &str) -> Redactor {
    let value: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let secrets: Vec<String> = value
        .as_ref()
        .and_then(|v| v.get("secretEnvironment"))
        .and_then(|v| v.as_object())
        .map(|m| {
            m.values()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect()
        })
        .unwrap_or_default();
    Redactor::new(secrets.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparsable_body_is_quoted_with_its_secrets_masked() {
        let body = r#"{"secretEnvironment": {"DB": "pa55-word-x"}, "commands": 7, "key": "AKIAIOSFODNN7EXAMPLE"}"#;
        let message = Message {
            id: "m".into(),
            body: body.into(),
            receipt: "r".into(),
            received: tokio::time::Instant::now(),
            sent: None,
        };
        let Err(Admission::Delete(reason)) = parse_message(&message) else {
            panic!("expected a deletion");
        };
        assert!(
            !reason.contains("pa55-word-x") && !reason.contains("AKIAIOSFODNN7EXAMPLE"),
            "{reason}"
        );
        assert!(reason.contains("***"), "{reason}");
    }
}
