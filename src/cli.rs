//! The command line: clap's definition of the binary's arguments, turned into a
//! [`Mode`](crate::modes::Mode). Flags are validated here (ranges) and override the settings
//! of the environment. Pure; nothing to cancel.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::MAX_SECONDS;
use crate::modes::Mode;
use crate::modes::local::LocalArgs;
use crate::modes::serve::ServeArgs;

/// A warm job runner for AWS Step Functions, compatible with the Attini Runner.
#[derive(Debug, Parser)]
#[command(
    name = "attini-runner",
    version = crate::VERSION,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    action: Option<Action>,
    /// Attini mode: the task token of the step that started this runner.
    #[arg(value_name = "SFN_TOKEN", requires = "required_version")]
    token: Option<String>,
    /// Attini mode: the lowest runner version the dispatcher accepts.
    #[arg(value_name = "REQUIRED_VERSION")]
    required_version: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Run one job on this machine, without AWS, and print its result as one JSON line.
    Local {
        /// The job: an Attini runner message or a native job (JSON); `-` reads standard input.
        job: PathBuf,
        /// A local zip or folder to use as the distribution (overrides the job's).
        #[arg(long, value_name = "PATH")]
        distribution: Option<PathBuf>,
        /// Job timeout in seconds (overrides the job's and ATTINI_JOB_TIMEOUT).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
        timeout: Option<u64>,
        /// An extra variable for the job, KEY=VALUE; may be repeated.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
    },
    /// Standalone mode: run native jobs from an SQS queue until stopped.
    Serve {
        /// The job queue's URL (default: ATTINI_QUEUE_URL).
        #[arg(long, value_name = "URL")]
        queue_url: Option<String>,
        /// Jobs at once (default: ATTINI_MAX_CONCURRENT_JOBS, else 5).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100))]
        max_jobs: Option<u64>,
        /// Exit after this many seconds without jobs (default: ATTINI_RUNNER_IDLE_TTL, else never).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=MAX_SECONDS))]
        idle_ttl: Option<u64>,
    },
    /// Exit 0: the Attini dispatcher's check that the runner is installed.
    DryRun,
    /// Exit 0 when a runner's ops server says it is alive (GET /livez), else 1: the container
    /// health check.
    Healthcheck {
        /// The ops server (default: ATTINI_OPS_ADDR, else 127.0.0.1:9464).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<std::net::SocketAddr>,
    },
    /// Helper subcommands that job scripts call through $ATTINI_RUNNER_EXEC.
    CommandMode {
        /// The subcommand and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// What the command line asks for.
pub enum Request {
    /// Run a mode.
    Run(Mode),
    /// `dry-run`: exit 0.
    DryRun,
    /// `healthcheck`: ask the ops server at this address (`None`: from the settings).
    Healthcheck(Option<std::net::SocketAddr>),
    /// No mode and no Attini arguments: print the help, exit 64.
    Help,
}

impl Cli {
    /// The request this command line makes.
    pub fn request(self) -> Request {
        let Some(action) = self.action else {
            return match (self.token, self.required_version) {
                (Some(token), Some(required_version)) => Request::Run(Mode::Attini {
                    token,
                    required_version,
                }),
                _ => Request::Help,
            };
        };
        Request::Run(match action {
            Action::DryRun => return Request::DryRun,
            Action::Healthcheck { addr } => return Request::Healthcheck(addr),
            Action::Local {
                job,
                distribution,
                timeout,
                env,
            } => Mode::Local(LocalArgs {
                job_file: job,
                distribution,
                timeout: timeout.map(Duration::from_secs),
                env,
            }),
            Action::Serve {
                queue_url,
                max_jobs,
                idle_ttl,
            } => Mode::Serve(ServeArgs {
                queue_url,
                max_jobs: max_jobs.map(|n| n as usize),
                idle_ttl: idle_ttl.map(Duration::from_secs),
            }),
            Action::CommandMode { args } => Mode::CommandMode(args),
        })
    }
}
