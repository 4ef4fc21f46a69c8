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
    /// The job's own credentials, if it has a role; revoked when dropped.
    pub credentials: Option<JobCredentials>,
}

/// Credentials of the job's own (a role), as the engine applies them.
pub struct JobCredentials {
    /// Variables for the job (set before its own).
    pub env: Vec<(String, String)>,
    /// Variables of the runner's environment the job does not inherit.
    pub withheld: Vec<String>,
    /// Values to mask in its output (its token).
    pub secrets: Vec<String>,
    /// Revokes the credentials when dropped (kept until the job task ends).
    pub guard: Box<dyn Send + Sync>,
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

/// Hex digits of an unparsable body's SHA-256 in the error log.
const HASH_DIGITS: usize = 16;

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
                report: Report::failure(
                    invalid_message_name(&message.body),
                    format!("The job message is invalid: {e}"),
                ),
            },
            None => Admission::Delete(format!(
                "the message is not a job ({e}) and carries no task token to answer; its body is {}, \
                 not quoted here because it may hold secrets (find it by the message id, or by \
                 `sha256sum` of the body)",
                describe_body(&message.body)
            )),
        }),
    }
}

/// The name an invalid message is refused with: an Attini plan's (it names
/// `deploymentPlanExecutionMetadata`) gets `RuntimeError`, as its plans expect; any other
/// `Job.Invalid`.
fn invalid_message_name(body: &str) -> &'static str {
    if body.contains("deploymentPlanExecutionMetadata") {
        RUNTIME_ERROR
    } else {
        crate::engine::names::INVALID_JOB
    }
}

/// An unparsable body named without quoting it: its length and the start of its SHA-256.
fn describe_body(body: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body.as_bytes());
    let hex: String = digest[..HASH_DIGITS / 2]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{} bytes, sha256 {hex}...", body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparsable_body_is_named_by_length_and_hash_never_quoted() {
        // Cut short: not JSON, so no secretEnvironment can be found in it to mask.
        let body = r#"{"secretEnvironment": {"DB": "pa55-word-x"}, "commands": ["true"#;
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
        for part in ["pa55-word-x", "secretEnvironment", "commands"] {
            assert!(!reason.contains(part), "{part} quoted: {reason}");
        }
        // `printf '%s' "$body" | sha256sum`
        assert!(
            reason.contains("63 bytes, sha256 b2f82c86c8dd6332..."),
            "{reason}"
        );
    }
}
