//! The `attini-runner` binary: parses the command line, sets up logging, runs the chosen mode
//! and maps its result to an exit code (0 success, 1 job failed, 64 bad job file, flags or
//! settings).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use attini_runner::aws::Clients;
use attini_runner::config::EngineConfig;
use attini_runner::dispatch::Exit;
use attini_runner::local::{self, LocalArgs};
use attini_runner::standalone::{self, ServeConfig};
use attini_runner::{attini, signals};
use tokio_util::sync::CancellationToken;

/// Exit code for a bad job file, flag or setting (EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// A warm job runner for AWS Step Functions, compatible with the Attini Runner.
#[derive(Debug, Parser)]
#[command(
    name = "attini-runner",
    version = attini_runner::VERSION,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Action>,
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
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
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
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
        idle_ttl: Option<u64>,
    },
    /// Exit 0: the Attini dispatcher's check that the runner is installed.
    DryRun,
    /// Helper subcommands that job scripts call through $ATTINI_RUNNER_EXEC.
    CommandMode {
        /// The subcommand and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let Some(mode) = cli.mode else {
        return match (cli.token, cli.required_version) {
            (Some(token), Some(required)) => run_attini(token, required),
            _ => {
                let _ = <Cli as clap::CommandFactory>::command().print_help();
                ExitCode::from(EXIT_USAGE)
            }
        };
    };
    match mode {
        Action::DryRun => ExitCode::SUCCESS,
        Action::Serve {
            queue_url,
            max_jobs,
            idle_ttl,
        } => run_serve(queue_url, max_jobs.map(|n| n as usize), idle_ttl),
        Action::CommandMode { args } => command_mode(&args),
        Action::Local {
            job,
            distribution,
            timeout,
            env,
        } => {
            let args = LocalArgs {
                job_file: job,
                distribution,
                timeout: timeout.map(Duration::from_secs),
                env,
            };
            run_local(args)
        }
    }
}

/// Logging and the async runtime, or the exit code that says why not.
fn start(default_level: &str) -> Result<tokio::runtime::Runtime, ExitCode> {
    if let Err(e) = attini_runner::telemetry::init(default_level) {
        eprintln!("attini-runner: {e}");
        return Err(ExitCode::from(EXIT_USAGE));
    }
    tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("attini-runner: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

fn run_serve(
    queue_url: Option<String>,
    max_jobs: Option<usize>,
    idle_ttl: Option<u64>,
) -> ExitCode {
    let runtime = match start("info") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let lookup = |k: &str| std::env::var(k).ok();
        let settings = ServeConfig::resolve(queue_url, max_jobs, idle_ttl, lookup)
            .and_then(|serve| Ok((serve, EngineConfig::from_env()?)));
        let (serve, engine) = match settings {
            Ok(settings) => settings,
            Err(e) => {
                tracing::error!(error = %e, "bad configuration");
                eprintln!("attini-runner: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let clients = Clients::load(std::env::var("ATTINI_AWS_REGION").ok()).await;
        let shutdown = CancellationToken::new();
        signals::stop_on_signal(shutdown.clone());
        match standalone::serve(serve, engine, clients, shutdown, Default::default()).await {
            Ok(Exit::Stopped(reason)) => {
                tracing::error!(reason, "stopped");
                ExitCode::FAILURE
            }
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("attini-runner: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        }
    })
}

fn run_attini(token: String, required_version: String) -> ExitCode {
    let runtime = match start("info") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    ExitCode::from(runtime.block_on(attini::run(token, required_version)))
}

fn run_local(args: LocalArgs) -> ExitCode {
    let runtime = match start("warn") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(local::run(args)) {
        Ok(report) if report.is_success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("attini-runner: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `command-mode`: the helpers job scripts call.
fn command_mode(args: &[String]) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => ExitCode::from(rt.block_on(attini_runner::command_mode::run(args))),
        Err(e) => {
            eprintln!("attini-runner: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
