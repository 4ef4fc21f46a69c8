//! A job's commands as spans of its trace. The commands run inside one bash, so their spans
//! are made afterwards from the starts the script noted ([`progress::CommandStart`]): each is a child
//! of the job's `commands` span, from its start to the next one's (the last to the end of the
//! script), with its 1-based index as `command.index`. The command text is not exported (it
//! may hold what a job author did not mean to publish). Without an OpenTelemetry exporter
//! this does nothing. Nothing to cancel.

use std::path::PathBuf;
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::executor::progress;

/// Adds one span per command started (as noted in the `progress` file) under `parent`; `end`
/// is when the script ended. Reads the file only when traces are exported, on a blocking
/// thread (bounded, and never a FIFO or a link: see [`progress::read`]).
pub async fn command_spans(parent: &tracing::Span, progress: PathBuf, end: SystemTime) {
    let cx = parent.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    let starts = tokio::task::spawn_blocking(move || progress::read(&progress))
        .await
        .unwrap_or_default();
    let tracer = opentelemetry::global::tracer("attini-runner");
    for (index, from, until) in bounds(&starts, end) {
        let mut span = tracer
            .span_builder("command")
            .with_start_time(from)
            .with_attributes(vec![KeyValue::new("command.index", index as i64)])
            .start_with_context(&tracer, &cx);
        span.end_with_timestamp(until);
    }
}

/// Each command's (index, start, end): it lasts until the next one starts, the last until
/// `end`, and never ends before it started (a clock step back gives a span of no length).
fn bounds(
    starts: &[progress::CommandStart],
    end: SystemTime,
) -> Vec<(usize, SystemTime, SystemTime)> {
    starts
        .iter()
        .enumerate()
        .map(|(n, start)| {
            let until = starts.get(n + 1).map_or(end, |next| next.at).max(start.at);
            (start.index, start.at, until)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_command_lasts_until_the_next_one_starts_and_the_last_until_the_end() {
        let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let start = |index, s| progress::CommandStart { index, at: t(s) };
        let starts = [start(1, 10), start(2, 13), start(3, 12), start(4, 20)];
        assert_eq!(
            bounds(&starts, t(25)),
            [
                (1, t(10), t(13)),
                (2, t(13), t(13)),
                (3, t(12), t(20)),
                (4, t(20), t(25)),
            ]
        );
        assert!(bounds(&[], t(1)).is_empty());
    }
}
