//! Logging setup: `tracing` to stderr, human-readable on a terminal and JSON lines otherwise
//! (CloudWatch). The filter comes from the settings (`RUST_LOG`, else `ATTINI_LOG_LEVEL`; see
//! [`crate::config`]), else the mode's default. Nothing to cancel.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

/// Installs the global subscriber with `filter` (a tracing filter such as `info` or
/// `attini_runner=debug`). A second call (tests) keeps the first subscriber.
pub fn init(filter: &str) -> Result<(), ConfigError> {
    let parsed = EnvFilter::try_new(filter).map_err(|e| ConfigError {
        key: "RUST_LOG".into(),
        value: filter.to_string(),
        expected: format!("a tracing filter ({e})"),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init()
    };
    Ok(())
}
