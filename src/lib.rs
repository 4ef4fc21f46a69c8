//! attini-runner: a warm job runner for AWS Step Functions, compatible with the Attini Runner.
//!
//! # A short tour
//!
//! A job arrives as a message body (an SQS message in AWS modes, a file in local mode).
//! [`job`] parses it once into a [`job::JobSpec`], whatever its format. The [`engine`] runs
//! it: [`distribution`] puts the distribution's content into a fresh [`workspace`], the
//! [`executor`] runs the commands as one bash in its own process group with output streamed
//! line by line (secrets masked by [`redact`]) and ends the whole process tree on timeout or
//! cancellation, and [`report`] turns the outcome into what Step Functions is told. [`local`]
//! is the mode that runs one job file with no AWS at all; [`config`] and [`telemetry`] hold
//! settings and logging.
//!
//! # Modules
//!
//! - [`config`]: environment -> validated settings.
//! - [`job`]: the job model and both wire formats.
//! - [`distribution`]: safe zip extraction, the extracted-distribution cache, workspace copies.
//! - [`workspace`]: one job's directory and its removal.
//! - [`executor`]: spawning, output, supervision, killing and reaping of a job's processes.
//! - [`redact`]: secret masking.
//! - [`report`]: output rules, size limits, error names and causes.
//! - [`engine`]: one job from start to report.
//! - [`local`]: local mode.
//! - [`telemetry`]: logging setup.

pub mod config;
pub mod distribution;
pub mod engine;
pub mod executor;
pub mod job;
pub mod local;
pub mod redact;
pub mod report;
pub mod telemetry;
pub mod workspace;

/// This runner's version; the Attini dispatcher requires at least 2.0.2.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
