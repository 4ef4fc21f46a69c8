//! Logging and tracing setup: `tracing` to stderr, human-readable on a terminal and JSON lines
//! otherwise (CloudWatch); with an OTLP endpoint, the runner's spans also go to
//! OpenTelemetry ([`traces`]), whatever the log level. A job's steps are DEBUG spans, so at
//! INFO every log line of a job carries the `job` span's fields (`span.job_id`, ...). The filter comes from the settings (`RUST_LOG`, else `ATTINI_LOG_LEVEL`; see
//! [`crate::config`]), else the mode's default. Whatever the filter, other crates (the AWS SDK,
//! the HTTP stack) log at most at INFO ([`wire_logs_off`]): their DEBUG and TRACE lines print
//! request and response bodies, which hold the jobs' literal secrets. Lines are written by a thread of their own
//! through a bounded buffer of [`BUFFERED_LINES`]: a stderr that blocks (a log driver in
//! blocking mode, a pipe nobody reads) never stalls the runner; past the buffer, lines are
//! dropped. Keep the
//! returned [`LogGuard`] until exit: dropping it flushes what is buffered. Nothing to cancel.

pub mod traces;

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{FilterExt, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, Environment};

/// Log lines the writer thread may be behind by before lines are dropped: some 50 jobs' worth
/// of the runner's own lines (job output goes to stdout directly). The buffer's slots are
/// written when it is made, so its size is resident memory: 8,192 slots are 256 KiB, where
/// the library's default of 128,000 was 4 MiB, a sixth of the idle runner.
pub const BUFFERED_LINES: usize = 8_192;

/// Keep until exit: dropping it flushes the buffered log lines and the last trace spans.
pub struct LogGuard {
    // Dropped in order: spans first (their export may log), then the log lines.
    _traces: Option<traces::TraceGuard>,
    _logs: tracing_appender::non_blocking::WorkerGuard,
}

/// Why logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A bad `RUST_LOG` or `ATTINI_LOG_LEVEL`.
    #[error(transparent)]
    Filter(#[from] ConfigError),
    /// The OTLP exporter could not be built.
    #[error(transparent)]
    Traces(#[from] traces::TraceError),
}

/// The runner's own events at any level, every other crate's at INFO or above.
pub fn wire_logs_off() -> Targets {
    Targets::new()
        .with_target("attini_runner", LevelFilter::TRACE)
        .with_default(LevelFilter::INFO)
}

/// Installs the global subscriber with `filter` (a tracing filter such as `info` or
/// `attini_runner=debug`), plus the OpenTelemetry layer when an OTLP endpoint is set. A
/// second call (tests) keeps the first subscriber.
pub fn init(filter: &str, env: &Environment) -> Result<LogGuard, TelemetryError> {
    let parsed = EnvFilter::try_new(filter).map_err(|e| ConfigError {
        key: "RUST_LOG".into(),
        value: filter.to_string(),
        expected: format!("a tracing filter ({e})"),
    })?;
    let terminal = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .finish(std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let fmt = if terminal {
        fmt.boxed()
    } else {
        fmt.json().flatten_event(true).with_span_list(false).boxed()
    };
    let (otel, trace_guard) = match traces::provider(env)? {
        Some((provider, trace_guard)) => {
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("attini-runner"))
                .with_filter(Targets::new().with_target("attini_runner", LevelFilter::DEBUG));
            (Some(layer), Some(trace_guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(parsed.and(wire_logs_off())))
        .with(otel)
        .try_init();
    Ok(LogGuard {
        _traces: trace_guard,
        _logs: guard,
    })
}
