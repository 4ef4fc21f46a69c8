//! Logging setup: `tracing` to stderr, human-readable on a terminal and JSON lines otherwise
//! (CloudWatch). The level comes from `RUST_LOG`, else `ATTINI_LOG_LEVEL` (CONTRACT.md 3.3:
//! `DEBUG`, `INFO`, `WARN`, `ERROR`, `OFF`, `ALL`), else the mode's default. Nothing to cancel.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::ConfigError;

/// Installs the global subscriber; `default_level` applies when neither variable is set.
pub fn init(default_level: &str) -> Result<(), ConfigError> {
    let directive = match std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()) {
        Some(rust_log) => rust_log,
        None => match std::env::var("ATTINI_LOG_LEVEL")
            .ok()
            .filter(|v| !v.is_empty())
        {
            Some(level) => attini_level(&level)?.to_string(),
            None => default_level.to_string(),
        },
    };
    let filter = EnvFilter::try_new(&directive).map_err(|e| ConfigError {
        key: "RUST_LOG".into(),
        value: directive.clone(),
        expected: format!("a tracing filter ({e})"),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
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

/// Maps an `ATTINI_LOG_LEVEL` value to a tracing level.
pub fn attini_level(value: &str) -> Result<&'static str, ConfigError> {
    Ok(match value.trim().to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        "OFF" => "off",
        _ => {
            return Err(ConfigError {
                key: "ATTINI_LOG_LEVEL".into(),
                value: value.into(),
                expected: "one of DEBUG, INFO, WARN, ERROR, OFF, ALL".into(),
            });
        }
    })
}
