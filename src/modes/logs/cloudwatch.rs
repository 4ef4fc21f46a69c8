//! One job's lines in the runner's CloudWatch log group: the job's output lines, which the
//! runner writes to stdout as `[<step> #<task id>] <line>`, and the runner's own JSON lines
//! about it (`span.task` is the task id), both found with one `FilterLogEvents` term, the task
//! id ([`crate::job::task_id`]). Each poll asks for what is new since the last one (events of the
//! same millisecond are told apart by their event id). Dropping a poll cancels it.

use std::collections::HashSet;

use serde_json::Value;

use crate::aws::error::classify;
use crate::calls::CallError;
use crate::metrics::Figures;

/// How far before the task was scheduled lines are looked for: the runner's clock and Step
/// Functions' may differ.
const CLOCK_SLACK_MS: i64 = 60_000;

/// What a poll found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// Lines to print, in order.
    pub lines: Vec<String>,
    /// The runner's `job finished` line came: the outcome it gives (`succeeded`, `failed`).
    pub finished: Option<String>,
}

/// Reads one task's lines from a log group.
pub struct GroupReader {
    logs: aws_sdk_cloudwatchlogs::Client,
    group: String,
    task: String,
    step: String,
    from_ms: i64,
    seen: HashSet<String>,
}

impl GroupReader {
    /// Reads the lines of task `task` (its id) of step `step`, scheduled at `scheduled_ms`,
    /// from `group`.
    pub fn new(
        logs: aws_sdk_cloudwatchlogs::Client,
        group: &str,
        task: &str,
        step: &str,
        scheduled_ms: i64,
    ) -> Self {
        GroupReader {
            logs,
            group: group.to_string(),
            task: task.to_string(),
            step: step.to_string(),
            from_ms: scheduled_ms - CLOCK_SLACK_MS,
            seen: HashSet::new(),
        }
    }

    /// The lines that arrived since the last poll.
    ///
    /// # Errors
    /// The failed `FilterLogEvents` call.
    pub async fn poll(&mut self, figures: &Figures) -> Result<Found, CallError> {
        let mut found = Found::default();
        let mut next = None;
        let start = self.from_ms;
        loop {
            let page = self
                .logs
                .filter_log_events()
                .log_group_name(&self.group)
                .start_time(start)
                .filter_pattern(format!("\"{}\"", self.task))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify(figures, "FilterLogEvents", e))?;
            for event in page.events.unwrap_or_default() {
                let id = event.event_id.unwrap_or_default();
                if !self.seen.insert(id) {
                    continue;
                }
                let at = event.timestamp.unwrap_or(start);
                self.from_ms = self.from_ms.max(at);
                let message = event.message.unwrap_or_default();
                self.take(message.trim_end_matches('\n'), &mut found);
            }
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok(found)
    }

    /// Adds `message` to `found` when it is one of this task's lines.
    fn take(&self, message: &str, found: &mut Found) {
        let tag_end = format!(" #{}] ", self.task);
        if message.starts_with('[')
            && let Some(at) = message.find(&tag_end)
        {
            // The state's name, whatever `stepName` the job gave its lines.
            let line = &message[at + tag_end.len()..];
            found.lines.push(format!("[{}] {line}", self.step));
            return;
        }
        let Ok(json) = serde_json::from_str::<Value>(message) else {
            return;
        };
        if json.pointer("/span/task").and_then(Value::as_str) != Some(self.task.as_str()) {
            return;
        }
        let text = json.get("message").and_then(Value::as_str).unwrap_or("");
        if text == "job finished" {
            let outcome = json.get("outcome").and_then(Value::as_str).unwrap_or("");
            found.finished = Some(outcome.to_string());
        }
        found
            .lines
            .push(format!("[{}] (runner) {}", self.step, runner_line(&json)));
    }
}

/// A runner JSON line in short, on one line: level, message, then its own fields as
/// `key=value` (a value with blanks or line breaks JSON-quoted).
pub fn runner_line(json: &Value) -> String {
    let level = json.get("level").and_then(Value::as_str).unwrap_or("INFO");
    let message = json.get("message").and_then(Value::as_str).unwrap_or("");
    let mut text = format!("{level} {message}");
    if let Value::Object(fields) = json {
        for (key, value) in fields {
            if matches!(
                key.as_str(),
                "timestamp" | "level" | "message" | "target" | "span" | "threadName" | "threadId"
            ) {
                continue;
            }
            match value {
                Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => {
                    text.push_str(&format!(" {key}={s}"))
                }
                other => text.push_str(&format!(" {key}={other}")),
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reader() -> GroupReader {
        let config = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version(aws_sdk_cloudwatchlogs::config::BehaviorVersion::latest())
            .build();
        let logs = aws_sdk_cloudwatchlogs::Client::from_conf(config);
        GroupReader::new(logs, "g", "0123456789ab", "Run", 120_000)
    }

    #[test]
    fn a_runner_line_is_one_line_with_its_fields() {
        let line = json!({
            "timestamp": "t", "level": "INFO", "message": "job finished", "target": "x",
            "span": {"task": "0123456789ab"}, "outcome": "failed", "cause": "exit 3\nlast lines",
            "duration_ms": 24, "error": "",
        });
        assert_eq!(
            runner_line(&line),
            r#"INFO job finished outcome=failed cause="exit 3\nlast lines" duration_ms=24 error="""#
        );
    }

    #[test]
    fn only_this_tasks_lines_are_taken_under_the_states_name() {
        let reader = reader();
        assert_eq!(reader.from_ms, 60_000);
        let mut found = Found::default();
        reader.take("[Migrate #0123456789ab] hello [x] ", &mut found);
        reader.take("[Run #ffffffffffff] other job", &mut found);
        reader.take("not a tag #0123456789ab] x", &mut found);
        reader.take(
            r#"{"message": "job started", "span": {"task": "0123456789ab"}}"#,
            &mut found,
        );
        reader.take(
            r#"{"message": "job finished", "span": {"task": "ffffffffffff"}}"#,
            &mut found,
        );
        assert_eq!(found.finished, None);
        reader.take(
            r#"{"level": "WARN", "message": "job finished", "outcome": "succeeded", "span": {"task": "0123456789ab"}}"#,
            &mut found,
        );
        assert_eq!(
            found.lines,
            [
                "[Run] hello [x] ",
                "[Run] (runner) INFO job started",
                "[Run] (runner) WARN job finished outcome=succeeded",
            ]
        );
        assert_eq!(found.finished.as_deref(), Some("succeeded"));
    }
}
