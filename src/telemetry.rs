//! Logging setup: `tracing` to stderr, human-readable on a terminal and JSON lines otherwise
//! (CloudWatch). The filter comes from the settings (`RUST_LOG`, else `ATTINI_LOG_LEVEL`; see
//! [`crate::config`]), else the mode's default. Lines are written by a thread of their own
//! through a bounded buffer: a stderr that blocks (a log driver in blocking mode, a pipe
//! nobody reads) never stalls the runner; past the buffer, lines are dropped. Keep the
//! returned [`LogGuard`] until exit: dropping it flushes what is buffered. Nothing to cancel.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

/// Flushes the buffered log lines when dropped.
pub type LogGuard = tracing_appender::non_blocking::WorkerGuard;

/// Installs the global subscriber with `filter` (a tracing filter such as `info` or
/// `attini_runner=debug`). A second call (tests) keeps the first subscriber.
pub fn init(filter: &str) -> Result<LogGuard, ConfigError> {
    let parsed = EnvFilter::try_new(filter).map_err(|e| ConfigError {
        key: "RUST_LOG".into(),
        value: filter.to_string(),
        expected: format!("a tracing filter ({e})"),
    })?;
    let terminal = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_writer(writer);
    let _ = if terminal {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init()
    };
    Ok(guard)
}
