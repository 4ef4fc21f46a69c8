//! attini-runner: a warm job runner for AWS Step Functions, compatible with the Attini Runner.
//!
//! # Four floors
//!
//! Each floor uses only the ones below it; nothing imports upwards.
//!
//! 1. [`job`]: the job model and both wire formats, parsed once at the edge.
//! 2. [`engine`]: one job from spec to outcome, with no AWS: workspace, distribution cache and
//!    safe extraction, environment, executor (process group, supervision, output), output
//!    rules and causes, secret masking.
//! 3. [`worker`]: the warm loop, with no AWS in it: slots, receive, admission, lease and
//!    heartbeat, report, acknowledge, drain. It owns the traits it talks through (`Queue`,
//!    `TaskTokens`, `JobRunner`) and an in-memory pair for its tests.
//! 4. [`aws`]: the SDK behind those traits (SQS, Step Functions, S3, DynamoDB, ECS, EC2).
//! 5. [`modes`]: local, serve, Attini and command-mode, each a small file wiring the above;
//!    [`config`] (every setting, parsed once), [`cli`], [`signals`] and [`telemetry`] (logs and
//!    traces) serve them, and [`ops`] (the HTTP ops server over the worker's health and board).
//!
//! [`metrics`] is below them all: every floor records into its one set of figures.
//!
//! # A message, from receive to answer
//!
//! `worker::poll` takes a free slot and receives; the mode's policy (`modes::serve` or
//! `modes::attini::policy`) parses the body (`job`) and resolves its distribution
//! (`modes::jobs`, `aws::s3`); `worker::job_task` starts the lease and heartbeat, runs the job
//! on the `engine`, sends the report (`worker::answer`, `aws::sfn`) and deletes the message
//! (`aws::sqs`); `worker::running` frees the slot.

pub mod aws;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod harden;
pub mod job;
pub mod metrics;
pub mod modes;
pub mod ops;
pub mod signals;
pub mod telemetry;
pub mod worker;

/// This runner's version; the Attini dispatcher requires at least 2.0.2.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
