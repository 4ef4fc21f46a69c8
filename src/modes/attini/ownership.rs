//! Whether this runner still owns its Attini runner item (CONTRACT.md 5.4): what one read of
//! the item means for a received message ([`Ownership::judge`]), and how long a read that
//! named this task stands for the next messages ([`OWNER_FRESH`]). No I/O here; the read
//! itself is the policy's, so there is nothing to cancel.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::aws::dynamodb::{self, Item};
use crate::engine::outcome::Report;
use crate::job;
use crate::worker::{Admission, CallError, ErrorClass};

/// How long a read of the runner item naming this task stands for the next messages: 5 s. A
/// takeover by another task is seen within this bound; before it, a burst of jobs costs one
/// read instead of one each.
pub const OWNER_FRESH: Duration = Duration::from_secs(5);

/// Error name of a job whose runner may not read its own runner item (the Attini Runner's).
pub const ILLEGAL_ACCESS: &str = "IllegalAccessException";

/// This runner's hold on its runner item: when a read of it last named this task.
#[derive(Debug, Default)]
pub struct Ownership {
    since: Mutex<Option<Instant>>,
}

impl Ownership {
    /// Whether a read named this task less than [`OWNER_FRESH`] ago (then the item is not
    /// read again).
    pub fn fresh(&self) -> bool {
        self.since().is_some_and(|at| at.elapsed() < OWNER_FRESH)
    }

    /// What `read` (the runner item of the table `table`) means for this task `own` and the
    /// message `body`: `None` when the item names this task, which is noted, so that the read
    /// stands for [`OWNER_FRESH`]; otherwise the refusal. Another task named -> shut down and
    /// leave the message; a transient error still there after the DynamoDB retries -> leave
    /// it and keep serving; denied -> fail the job with [`ILLEGAL_ACCESS`] and shut down
    /// (only shut down when the body has no token); any other error -> shut down and leave it.
    pub fn judge(
        &self,
        read: Result<Item, CallError>,
        own: &str,
        body: &str,
        table: &str,
    ) -> Option<Admission> {
        let refusal = refusal(read, own, body, table);
        if refusal.is_none() {
            *self.since() = Some(Instant::now());
        }
        refusal
    }

    /// The time (a poisoned lock still holds a valid one).
    fn since(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.since.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The refusal of [`Ownership::judge`]; `None` when the item names `own`.
fn refusal(read: Result<Item, CallError>, own: &str, body: &str, table: &str) -> Option<Admission> {
    let e = match read {
        Ok(found) => {
            let current = dynamodb::text(&found, "taskId").map(String::as_str);
            return (current != Some(own)).then(|| Admission::Shutdown(format!(
                "the resource state names task {current:?}, not this task {own:?}: another runner took over"
            )));
        }
        Err(e) => e,
    };
    if e.class == ErrorClass::Transient {
        return Some(Admission::Leave(format!(
            "the runner's resource state could not be read for {} s ({e}); the message is left for later",
            dynamodb::DYNAMODB_DEADLINE.as_secs()
        )));
    }
    if e.class != ErrorClass::Denied {
        return Some(Admission::Shutdown(format!(
            "the runner's resource state could not be read from the {table} dynamodb table ({e}); the runner stops and leaves the message for another runner"
        )));
    }
    // The Attini Runner's words.
    let cause = format!(
        "The runners IAM role does not have permission to read from the {table} dynamodb table. Will terminate the container ({e})"
    );
    Some(match job::salvage_token(body) {
        Some(token) => Admission::FailAndShutdown {
            token,
            report: Report::failure(ILLEGAL_ACCESS, cause.clone()),
            reason: cause,
        },
        None => Admission::Shutdown(cause),
    })
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    const OWN: &str = "arn:aws:ecs:us-east-1:000000000000:task/c/own";
    const BODY: &str = r#"{"taskToken": "token-1"}"#;

    fn item(task: &str) -> Item {
        Item::from([("taskId".to_string(), AttributeValue::S(task.into()))])
    }

    fn error(class: ErrorClass) -> Result<Item, CallError> {
        Err(CallError {
            operation: "GetItem",
            class,
            message: "refused".into(),
            source: None,
        })
    }

    /// The refusal of `read` by a new [`Ownership`], which stays unowned.
    fn refused(read: Result<Item, CallError>, body: &str, table: &str) -> Admission {
        let ownership = Ownership::default();
        let refusal = ownership.judge(read, OWN, body, table);
        assert!(
            !ownership.fresh(),
            "a refusal is not a read naming this task"
        );
        refusal.expect("refused")
    }

    /// The reason of a shutdown; panics on another admission.
    fn shutdown(admission: Admission) -> String {
        match admission {
            Admission::Shutdown(reason) => reason,
            _ => panic!("not a shutdown"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_naming_this_task_stands_for_five_seconds_exactly() {
        let ownership = Ownership::default();
        assert!(!ownership.fresh(), "never read");
        assert!(ownership.judge(Ok(item(OWN)), OWN, BODY, "T").is_none());
        assert!(ownership.fresh());
        tokio::time::advance(OWNER_FRESH - Duration::from_millis(1)).await;
        assert!(ownership.fresh(), "1 ms before the bound");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!ownership.fresh(), "at the bound the item is read again");
        assert!(ownership.judge(Ok(item(OWN)), OWN, BODY, "T").is_none());
        assert!(ownership.fresh(), "a new read stands again");
    }

    #[test]
    fn another_task_named_in_the_item_shuts_down() {
        for found in [item("arn:other"), Item::new()] {
            let reason = shutdown(refused(Ok(found), BODY, "T"));
            assert!(reason.contains("another runner took over"), "{reason}");
        }
    }

    #[test]
    fn throttling_past_the_retries_leaves_the_message_and_keeps_serving() {
        match refused(error(ErrorClass::Transient), BODY, "T") {
            Admission::Leave(reason) => {
                assert!(reason.contains("could not be read for 120 s"), "{reason}")
            }
            _ => panic!("not left"),
        }
    }

    #[test]
    fn a_denied_read_fails_the_job_with_illegal_access_and_shuts_down() {
        let table = "AttiniResourceStatesV1";
        match refused(error(ErrorClass::Denied), BODY, table) {
            Admission::FailAndShutdown {
                token,
                report,
                reason,
            } => {
                assert_eq!(token, "token-1");
                let words = "The runners IAM role does not have permission to read from the \
                             AttiniResourceStatesV1 dynamodb table. Will terminate the container";
                assert!(reason.starts_with(words), "{reason}");
                assert_eq!(report, Report::failure(ILLEGAL_ACCESS, reason));
            }
            _ => panic!("not failed and shut down"),
        }
        // Without a token there is nothing to answer: the runner only stops.
        let reason = shutdown(refused(error(ErrorClass::Denied), "{}", table));
        assert!(reason.contains("does not have permission"), "{reason}");
    }

    #[test]
    fn another_error_shuts_down_and_leaves_the_job_unanswered() {
        for class in [ErrorClass::Missing, ErrorClass::Permanent] {
            let reason = shutdown(refused(error(class), BODY, "T"));
            let words = "could not be read from the T dynamodb table";
            assert!(reason.contains(words), "{class:?}: {reason}");
        }
    }
}
