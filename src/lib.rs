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
//! - [`aws`]: building the AWS clients (endpoint overrides for emulators).
//! - [`retry`]: AWS error classes and jittered backoff.
//! - [`queue`]: SQS receive and delete.
//! - [`fetch`]: distribution zips from S3.
//! - [`joblog`]: job output to stdout and the S3 JSON-lines log object.
//! - [`reporter`]: answering task tokens.
//! - [`admit`]: message -> admission (parse, refuse, distribution, log object).
//! - [`dispatch`]: the loop: slots, receive, admit, idle TTL, drain.
//! - [`registry`]: running and finished messages, so that none runs twice.
//! - [`jobtask`]: one job: lease, heartbeat (the cancel channel), run, report, acknowledge.
//! - [`standalone`]: `serve`, native jobs from any state machine.
//! - [`attini`]: Attini mode: start handshake, startup commands, the poll filters.
//! - [`ecs`]: ECS container metadata; [`ec2`]: the terminate-on-exit hook.
//! - [`signals`]: SIGTERM/SIGINT handling.
//! - [`command_mode`]: the helper subcommands job scripts call.
//! - [`telemetry`]: logging setup.

pub mod admit;
pub mod attini;
pub mod aws;
pub mod command_mode;
pub mod config;
pub mod dispatch;
pub mod distribution;
pub mod ec2;
pub mod ecs;
pub mod engine;
pub mod executor;
pub mod fetch;
pub mod job;
pub mod joblog;
pub mod jobtask;
pub mod local;
pub mod queue;
pub mod redact;
pub mod registry;
pub mod report;
pub mod reporter;
pub mod retry;
pub mod signals;
pub mod standalone;
pub mod telemetry;
pub mod workspace;

/// This runner's version; the Attini dispatcher requires at least 2.0.2.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
