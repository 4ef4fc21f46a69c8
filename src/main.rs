//! The `attini-runner` binary: parses the command line, sets up logging, runs the chosen mode
//! and maps its result to an exit code (0 success, 1 job failed, 64 bad job file, flags or
//! settings).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use attini_runner::local::{self, LocalArgs};

/// Exit code for a bad job file, flag or setting (EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// A warm job runner for AWS Step Functions, compatible with the Attini Runner.
#[derive(Debug, Parser)]
#[command(name = "attini-runner", version = attini_runner::VERSION)]
struct Cli {
    #[command(subcommand)]
    mode: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Run one job on this machine, without AWS, and print its result as one JSON line.
    Local {
        /// The job: an Attini runner message or a native job (JSON).
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
    match cli.mode {
        Action::DryRun => ExitCode::SUCCESS,
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

fn run_local(args: LocalArgs) -> ExitCode {
    if let Err(e) = attini_runner::telemetry::init("warn") {
        eprintln!("attini-runner: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("attini-runner: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
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

/// `command-mode`: `version` here; the AWS subcommands come with AWS mode.
fn command_mode(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        Some("version") => {
            println!("{}", attini_runner::VERSION);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("Unknown arguments: {args:?}");
            ExitCode::FAILURE
        }
    }
}
