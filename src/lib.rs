//! attini-runner: a warm job runner for AWS Step Functions, compatible with the Attini Runner.
//!
//! # Five floors
//!
//! Each floor uses only the ones below it; nothing imports upwards (`tests/it/layers.rs`).
//!
//! 1. [`job`]: the job model and both wire formats, parsed once at the edge.
//! 2. [`engine`]: one job from spec to outcome, with no AWS: workspace, distribution cache and
//!    safe extraction, environment, executor (process group, supervision, output), output
//!    rules and causes, secret masking.
//! 3. [`worker`]: the warm loop, with no AWS in it: slots, receive, admission, lease and
//!    heartbeat, report, acknowledge, drain. It owns the traits it talks through (`Queue`,
//!    `TaskTokens`, `JobRunner`) and an in-memory pair for its tests.
//! 4. [`aws`]: the SDK behind those traits (SQS, Step Functions, S3, DynamoDB, ECS, EC2), and
//!    [`credentials`]: a role per job (STS, the loopback credential endpoint).
//! 5. [`modes`]: local, serve, Attini and command-mode, each a small file wiring the above;
//!    [`config`] (every setting and the environment, read once), [`cli`], [`signals`],
//!    [`telemetry`] (logs and traces) and [`harden`] (jobs cannot read the runner) serve them,
//!    and [`ops`] (the HTTP ops server over the worker's health and board).
//!
//! [`metrics`] and [`calls`] are below them all: every floor records into the one
//! [`metrics::Figures`] object its runner hands it (no global), and every failed call to a
//! service is a [`calls::CallError`] with its source.
//!
//! # A message, from receive to answer
//!
//! `worker::poll` takes a free slot, receives, and hands each message with its slot to a task
//! of its own (`worker::message_task`), which starts the message's lease (`worker::lease`) and
//! asks the mode's policy (`modes::serve` or `modes::attini::policy`): it parses the body
//! (`job`), reads its secrets, assumes its role (`credentials`) and resolves its distribution
//! (`modes::admission`, `aws::s3`). `worker::job_task` then runs the job on the `engine`,
//! sends the report (`worker::answer`, `aws::sfn`) and deletes the message (`aws::sqs`);
//! `worker::running` frees the slot. Both AWS modes start this machine the same way
//! (`modes::aws_runner`).

pub mod aws;
pub mod calls;
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
