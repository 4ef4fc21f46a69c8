//! The `attini-runner` binary: parses the command line, runs the chosen mode and exits with
//! its status (0 success, 1 job failed or runner stopped by an error, 3 broken runner, 64 bad
//! job file, flag or setting, 65 `validate` found the job invalid, 66 `validate` could not
//! read it or `logs`/`replay` found no such execution, 69 `logs`/`replay` could not ask AWS,
//! 75 `logs` found the job still running, 130 stopped at once by a second signal).

use std::process::ExitCode;

use clap::CommandFactory;

use attini_runner::cli::{self, Cli, Request};
use attini_runner::modes::{self, ExitStatus};

fn main() -> ExitCode {
    let request = match cli::parse(std::env::args_os()) {
        Ok(request) => request,
        Err(e) => {
            let status = if e.use_stderr() {
                ExitStatus::Usage
            } else {
                ExitStatus::Success
            };
            let _ = e.print();
            return status.into();
        }
    };
    match request {
        Request::Run(mode) => modes::run(mode).into(),
        Request::Validate(job) => modes::validate::run(&job).into(),
        Request::DryRun => ExitStatus::Success.into(),
        Request::Healthcheck(addr) => modes::healthcheck(addr).into(),
        Request::Help => {
            let _ = Cli::command().print_help();
            ExitStatus::Usage.into()
        }
    }
}
