//! Job outcome -> what is sent to Step Functions: the output rules of CONTRACT.md 5.6.8,
//! the Step Functions size limits, the Attini error names and cause texts. Pure; nothing to
//! cancel.

use serde_json::Value;

use crate::engine::executor::{Sweep, Termination};
use crate::engine::redact::Redactor;

/// Largest task output Step Functions accepts, in bytes (UTF-8).
pub const MAX_OUTPUT_BYTES: usize = 262_144;
/// Largest `cause` Step Functions accepts, in characters.
pub const MAX_CAUSE_CHARS: usize = 32_768;

/// Error name of a script that failed (non-zero exit, killed, timed out) (CONTRACT.md 5.6.8).
pub const SCRIPT_EXECUTION_ERROR: &str = "ScriptExecutionError";
/// Error name of anything else that went wrong with a job (CONTRACT.md 5.6.8).
pub const RUNTIME_ERROR: &str = "RuntimeError";
/// Error name of a job the runner had to stop before it finished (drain, shutdown). A state
/// machine `Retry` on it moves the job to another runner.
pub const INTERRUPTED_ERROR: &str = "Runner.Interrupted";

/// The answer to a job's task token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `SendTaskSuccess` with this output.
    Success {
        /// The output as JSON text (at most [`MAX_OUTPUT_BYTES`]).
        output: String,
    },
    /// `SendTaskFailure` with this error and cause.
    Failure {
        /// Error name.
        error: String,
        /// Human-readable cause (at most [`MAX_CAUSE_CHARS`] characters).
        cause: String,
    },
}

impl Report {
    /// A failure report; the cause is cut to the Step Functions limit.
    pub fn failure(error: &str, cause: impl Into<String>) -> Self {
        Report::Failure {
            error: error.to_string(),
            cause: limit_cause(cause.into()),
        }
    }

    /// True for [`Report::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Report::Success { .. })
    }
}

/// The task output built from the content of `$ATTINI_OUTPUT` (`None`: the file is gone).
///
/// Missing, empty or blank -> `{}`; the whole content is one JSON value -> that value as is;
/// anything else -> `{"result": <content without one trailing newline>}`. Secrets are masked
/// inside JSON strings. Fails when the result exceeds [`MAX_OUTPUT_BYTES`].
pub fn output_payload(content: Option<&[u8]>, redactor: &Redactor) -> Result<String, Report> {
    let text = content.map(String::from_utf8_lossy).unwrap_or_default();
    let payload = if text.trim().is_empty() {
        "{}".to_string()
    } else if let Ok(value) = serde_json::from_str::<Value>(&text) {
        let redacted = redactor.redact_json(value.clone());
        if redacted == value {
            text.trim().to_string()
        } else {
            redacted.to_string()
        }
    } else {
        let raw = text.strip_suffix('\n').unwrap_or(&text);
        serde_json::json!({ "result": redactor.redact(raw) }).to_string()
    };
    if payload.len() > MAX_OUTPUT_BYTES {
        return Err(output_too_large(payload.len()));
    }
    Ok(payload)
}

/// The failure for an output of `bytes` bytes.
pub fn output_too_large(bytes: usize) -> Report {
    Report::failure(
        super::names::INVALID_OUTPUT,
        format!(
            "The job succeeded but its output is {bytes} bytes; Step Functions accepts at most {MAX_OUTPUT_BYTES} bytes. \
             Write large results to S3 and put a reference to them in $ATTINI_OUTPUT."
        ),
    )
}

/// The failure report of a script that did not exit 0.
///
/// `logs_at` is where the complete log can be read (CloudWatch console link), if known;
/// `tail` the last output lines, already redacted.
pub fn script_failure(
    termination: &Termination,
    sweep: &Sweep,
    grace_secs: u64,
    tail: &[String],
    logs_at: Option<&str>,
) -> Report {
    let (error, mut cause) = match termination {
        Termination::Exited(code) => (
            SCRIPT_EXECUTION_ERROR,
            format!("Script exited with code {code}"),
        ),
        Termination::Signaled(signal) => (
            SCRIPT_EXECUTION_ERROR,
            format!(
                "Script was killed by signal {signal} ({})",
                signal_name(*signal)
            ),
        ),
        Termination::TimedOut(after) => (
            super::names::TIMEOUT,
            format!("Script timed out after {} seconds", after.as_secs()),
        ),
        Termination::Cancelled => (
            INTERRUPTED_ERROR,
            "The runner stopped the job before it finished".to_string(),
        ),
    };
    if sweep.killed > 0 {
        cause.push_str(&format!(
            " ({} process(es) were still running {grace_secs} s after SIGTERM and were killed with SIGKILL)",
            sweep.killed
        ));
    }
    if let Some(url) = logs_at {
        cause.push_str(&format!(", see complete logs at: {url}"));
    }
    if !tail.is_empty() {
        cause.push_str(&format!(
            "\nLast {} lines of output:\n{}",
            tail.len(),
            tail.join("\n")
        ));
    }
    Report::failure(error, cause)
}

/// `SIGTERM`-style name of a signal number.
fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

/// Cuts a cause to [`MAX_CAUSE_CHARS`], keeping its first line and its end (the last output
/// lines matter most).
fn limit_cause(cause: String) -> String {
    let count = cause.chars().count();
    if count <= MAX_CAUSE_CHARS {
        return cause;
    }
    let head: String = cause
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(1_000)
        .collect();
    let marker = "\n[... cut ...]\n";
    let keep = MAX_CAUSE_CHARS - head.chars().count() - marker.len();
    let tail: String = cause.chars().skip(count - keep).collect();
    format!("{head}{marker}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn out(content: Option<&str>) -> Result<String, Report> {
        output_payload(content.map(str::as_bytes), &Redactor::default())
    }

    #[test]
    fn output_rules() {
        assert_eq!(out(None).unwrap(), "{}");
        assert_eq!(out(Some("")).unwrap(), "{}");
        assert_eq!(out(Some(" \n")).unwrap(), "{}");
        assert_eq!(out(Some("{\"a\": [1, 2]}\n")).unwrap(), "{\"a\": [1, 2]}");
        assert_eq!(out(Some("42")).unwrap(), "42");
        assert_eq!(out(Some("\"quoted\"")).unwrap(), "\"quoted\"");
        assert_eq!(out(Some("hello\n")).unwrap(), r#"{"result":"hello"}"#);
        assert_eq!(out(Some("hello\n\n")).unwrap(), r#"{"result":"hello\n"}"#);
        // A JSON value followed by text is text, not the value (CONTRACT.md 11.12).
        assert_eq!(
            out(Some("true story")).unwrap(),
            r#"{"result":"true story"}"#
        );
    }

    #[test]
    fn success_is_told_apart_from_failure() {
        assert!(
            out(Some("{}"))
                .map(|output| Report::Success { output })
                .unwrap()
                .is_success()
        );
        assert!(!Report::failure(RUNTIME_ERROR, "x").is_success());
    }

    #[test]
    fn output_limit_is_exact() {
        let fits = format!("\"{}\"", "x".repeat(MAX_OUTPUT_BYTES - 2));
        assert_eq!(out(Some(&fits)).unwrap().len(), MAX_OUTPUT_BYTES);
        let over = format!("\"{}\"", "x".repeat(MAX_OUTPUT_BYTES - 1));
        let Err(Report::Failure { error, cause }) = out(Some(&over)) else {
            panic!("expected a failure");
        };
        assert_eq!(error, crate::engine::names::INVALID_OUTPUT);
        assert!(cause.contains("262145 bytes"), "{cause}");
        // Wrapping text counts too: 262,140 bytes of text become a larger payload.
        assert!(out(Some(&"y".repeat(MAX_OUTPUT_BYTES - 4))).is_err());
    }

    #[test]
    fn secrets_are_masked_in_output() {
        let r = Redactor::new(["p@ss\"word"]);
        let json = serde_json::json!({"k": "p@ss\"word"}).to_string();
        assert_eq!(
            output_payload(Some(json.as_bytes()), &r).unwrap(),
            r#"{"k":"***"}"#
        );
        assert_eq!(
            output_payload(Some(b"x p@ss\"word"), &r).unwrap(),
            r#"{"result":"x ***"}"#
        );
    }

    #[test]
    fn causes_name_what_happened_and_carry_the_tail() {
        let tail = vec!["a".to_string(), "b".to_string()];
        let Report::Failure { error, cause } = script_failure(
            &Termination::Exited(3),
            &Sweep::default(),
            10,
            &tail,
            Some("https://x"),
        ) else {
            panic!()
        };
        assert_eq!(error, SCRIPT_EXECUTION_ERROR);
        assert_eq!(
            cause,
            "Script exited with code 3, see complete logs at: https://x\nLast 2 lines of output:\na\nb"
        );
        let sweep = Sweep {
            found: 2,
            killed: 1,
            survivors: 0,
        };
        let Report::Failure { cause, .. } = script_failure(
            &Termination::TimedOut(Duration::from_secs(5)),
            &sweep,
            10,
            &[],
            None,
        ) else {
            panic!()
        };
        assert!(
            cause.starts_with("Script timed out after 5 seconds (1 process(es)"),
            "{cause}"
        );
        let Report::Failure { cause, .. } =
            script_failure(&Termination::Signaled(9), &Sweep::default(), 10, &[], None)
        else {
            panic!()
        };
        assert_eq!(cause, "Script was killed by signal 9 (SIGKILL)");
    }

    #[test]
    fn long_causes_keep_first_line_and_end() {
        let cause = format!("first line\n{}END", "z".repeat(MAX_CAUSE_CHARS * 2));
        let Report::Failure { cause, .. } = Report::failure(RUNTIME_ERROR, cause) else {
            panic!()
        };
        assert_eq!(cause.chars().count(), MAX_CAUSE_CHARS);
        assert!(cause.starts_with("first line\n[... cut ...]"));
        assert!(cause.ends_with("zEND"));
    }
}
