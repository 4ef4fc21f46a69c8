//! The command line: clap's definition of the binary's commands, turned into a [`Request`].
//! Flags are validated here (ranges) and override the settings of the environment.
//!
//! The Attini dispatcher starts the runner as `attini-runner <SFN_TOKEN> <REQUIRED_VERSION>`.
//! That form is recognised before clap sees the words, only when they are shaped like a task
//! token and a version ([`dispatcher_call`]); it is not in the usage, and any other word is
//! refused by clap as an unknown command (with its "did you mean"), so a typo such as
//! `attini-runner serv` never starts Attini mode. Pure; nothing to cancel.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::MAX_SECONDS;
use crate::modes::Mode;
use crate::modes::local::LocalArgs;
use crate::modes::logs::LogsArgs;
use crate::modes::replay::ReplayArgs;
use crate::modes::serve::ServeArgs;

/// Shortest word taken as a Step Functions task token. Real tokens are several hundred
/// characters; every command name is far shorter.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Longest task token Step Functions issues (its API limit).
pub const MAX_TOKEN_CHARS: usize = 2048;

/// A warm job runner for AWS Step Functions, compatible with the Attini Runner.
#[derive(Debug, Parser)]
#[command(
    name = "attini-runner",
    version = crate::VERSION,
    after_help = "The Attini dispatcher also starts it as `attini-runner <SFN_TOKEN> <REQUIRED_VERSION>` (Attini mode)."
)]
pub struct Cli {
    #[command(subcommand)]
    action: Option<Action>,
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
    /// Check a job file without running it.
    ///
    /// Exit 0 when it is valid, 65 naming the field when it is not, 66 when it cannot be read.
    Validate {
        /// The job: an Attini runner message or a native job (JSON); `-` reads standard input.
        job: PathBuf,
    },
    /// Exit 0: the Attini dispatcher's check that the runner is installed.
    DryRun,
    /// The container health check: exit 0 when a runner's ops server says it is alive.
    ///
    /// Asks GET /livez and exits 0 when it answers 200, else 1. With the ops server off
    /// (ATTINI_OPS_ADDR=off) there is nothing to ask, and it exits 0 saying so.
    Healthcheck {
        /// The ops server (default: ATTINI_OPS_ADDR, else 127.0.0.1:9464).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<std::net::SocketAddr>,
    },
    /// Print one execution's job lines in order, from the runner's log group or an Attini
    /// step's S3 log object.
    ///
    /// Exit 0 when the job succeeded, 1 when it failed, 75 when it still runs (without
    /// --follow), 64 for a bad ARN or flag, 66 when the execution, step or log is not there,
    /// 69 when AWS could not be asked.
    Logs {
        /// The execution ARN (arn:aws:states:<region>:<account>:execution:<machine>:<name>).
        execution_arn: String,
        /// Only this step's job (each attempt of it).
        #[arg(long, value_name = "NAME")]
        step: Option<String>,
        /// Keep printing until the job ends.
        #[arg(long)]
        follow: bool,
        /// The runner's CloudWatch log group.
        #[arg(long, value_name = "NAME", conflicts_with = "stack")]
        log_group: Option<String>,
        /// The runner-service stack; its output LogGroupName names the log group.
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
    },
    /// Run a job of an execution again on this machine and compare its outcome.
    ///
    /// The job is rebuilt from the execution's history with the distribution version it ran.
    /// Exit 0 when the replay succeeded, 1 when it failed, 64 when the job cannot be rebuilt
    /// (it says what is missing), 66 when the execution or step is not there, 69 when AWS
    /// could not be asked.
    Replay {
        /// The execution ARN.
        execution_arn: String,
        /// The step to replay (its last attempt; default: the last failed runner step).
        #[arg(long, value_name = "NAME")]
        step: Option<String>,
        /// Read the job's secret references (Secrets Manager, SSM) with your credentials.
        #[arg(long)]
        resolve_secrets: bool,
        /// A variable for the job, KEY=VALUE, in place of its own or of a secret; may be repeated.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// A local zip or folder in place of the job's distribution.
        #[arg(long, value_name = "PATH")]
        distribution: Option<PathBuf>,
        /// Run the distribution's current object even if it changed since the job ran.
        #[arg(long)]
        current_distribution: bool,
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
    /// `validate JOB`: check a job file.
    Validate(PathBuf),
    /// `dry-run`: exit 0.
    DryRun,
    /// `healthcheck`: ask the ops server at this address (`None`: from the settings).
    Healthcheck(Option<std::net::SocketAddr>),
    /// No command: print the help, exit 64.
    Help,
}

/// Reads the command line `args` (the program name first).
///
/// # Errors
/// clap's error for an unknown command, flag or value (with its "did you mean"), or the
/// help and version texts, which clap also returns as errors.
pub fn parse<I, T>(args: I) -> Result<Request, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let [_, token, version] = args.as_slice()
        && let (Some(token), Some(version)) = (token.to_str(), version.to_str())
        && dispatcher_call(token, version)
    {
        return Ok(Request::Run(Mode::Attini {
            token: token.to_string(),
            required_version: version.to_string(),
        }));
    }
    Ok(Cli::try_parse_from(args)?.request())
}

/// Whether `token version` is the Attini dispatcher's start: a word shaped like a task token
/// ([`MIN_TOKEN_CHARS`] to [`MAX_TOKEN_CHARS`] printable characters without blanks, not
/// starting with `-`, not a command name) and a version (`2.0.2`: digits and dots, an
/// optional `-` or `+` suffix).
pub fn dispatcher_call(token: &str, version: &str) -> bool {
    let commands = Cli::command();
    let is_command = commands.get_subcommands().any(|c| c.get_name() == token);
    let token_shaped = (MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&token.chars().count())
        && !token.starts_with('-')
        && token.chars().all(|c| c.is_ascii_graphic());
    token_shaped && !is_command && version_shaped(version)
}

fn version_shaped(version: &str) -> bool {
    let (core, suffix) = match version.find(['-', '+']) {
        Some(at) => version.split_at(at),
        None => (version, ""),
    };
    let core_ok = !core.is_empty()
        && core
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    let suffix_ok = suffix
        .chars()
        .skip(1)
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    core_ok && suffix_ok && suffix != "-" && suffix != "+"
}

impl Cli {
    /// The request this command line makes.
    pub fn request(self) -> Request {
        let Some(action) = self.action else {
            return Request::Help;
        };
        Request::Run(match action {
            Action::DryRun => return Request::DryRun,
            Action::Healthcheck { addr } => return Request::Healthcheck(addr),
            Action::Validate { job } => return Request::Validate(job),
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
            Action::Logs {
                execution_arn,
                step,
                follow,
                log_group,
                stack,
            } => Mode::Logs(LogsArgs {
                execution: execution_arn,
                step,
                follow,
                log_group,
                stack,
            }),
            Action::Replay {
                execution_arn,
                step,
                resolve_secrets,
                env,
                distribution,
                current_distribution,
            } => Mode::Replay(ReplayArgs {
                execution: execution_arn,
                step,
                resolve_secrets,
                env,
                distribution,
                current_distribution,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "AAAAKgAAAAIAAAAAAAAAAbc/def+ghi=";

    fn attini(args: &[&str]) -> bool {
        matches!(parse(args), Ok(Request::Run(Mode::Attini { .. })))
    }

    #[test]
    fn the_dispatcher_form_is_a_token_and_a_version() {
        assert!(attini(&["attini-runner", TOKEN, "2.0.2"]));
        assert!(attini(&["attini-runner", TOKEN, "2"]));
        assert!(attini(&["attini-runner", TOKEN, "2.1.0-SNAPSHOT"]));
        assert!(attini(&["attini-runner", TOKEN, "2.1.0-rc.1"]));
        assert!(attini(&["attini-runner", TOKEN, "2.1.0-beta-2"]));
        assert!(!attini(&["attini-runner", TOKEN, "2.1.0-rc_1"]));
        assert!(!attini(&["attini-runner", TOKEN, "latest"]));
        assert!(!attini(&["attini-runner", TOKEN, "2..1"]));
        assert!(!attini(&["attini-runner", TOKEN, "2.1-"]));
        assert!(!attini(&["attini-runner", "replay", "2.0.2"]));
        assert!(!attini(&["attini-runner", "token with blanks!", "2.0.2"]));
        assert!(!attini(&[
            "attini-runner",
            "--queue-url=https://x",
            "2.0.2"
        ]));
        assert!(!attini(&["attini-runner", TOKEN]));
    }

    #[test]
    fn an_unknown_word_is_refused_with_a_suggestion() {
        let Err(e) = parse(["attini-runner", "serv"]) else {
            panic!("`serv` was accepted");
        };
        let text = e.render().to_string();
        assert!(text.contains("unrecognized subcommand 'serv'"), "{text}");
        assert!(text.contains("serve"), "{text}");
        assert!(parse(["attini-runner", "replays", "arn:aws:states:x"]).is_err());
    }

    #[test]
    fn the_usage_does_not_show_the_dispatcher_positionals() {
        let usage = Cli::command().render_usage().to_string();
        assert!(!usage.contains("SFN_TOKEN"), "{usage}");
        assert!(matches!(parse(["attini-runner"]), Ok(Request::Help)));
    }
}
