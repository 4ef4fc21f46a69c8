//! The `attini-runner` binary: parses the command line, runs the chosen mode and exits with
//! its status (0 success, 1 job failed or runner stopped by an error, 64 bad job file, flag
//! or setting, 130 stopped at once by a second signal).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use attini_runner::cli::{Cli, Request};
use attini_runner::modes::{self, ExitStatus};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    match cli.request() {
        Request::Run(mode) => modes::run(mode).into(),
        Request::DryRun => ExitStatus::Success.into(),
        Request::Healthcheck(addr) => modes::healthcheck(addr).into(),
        Request::Help => {
            let _ = Cli::command().print_help();
            ExitStatus::Usage.into()
        }
    }
}
