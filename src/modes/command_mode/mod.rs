//! `attini-runner command-mode <sub> ...`: the helpers job scripts call through
//! `$ATTINI_RUNNER_EXEC` (CONTRACT.md 8). Their own log goes to `attini-runner-commands.log` in
//! the current directory, is printed to stderr only on error, and is removed at the end.
//! `stack-outputs` and `stack-events` (the `sam` kind's) are in [`cloudformation`]. Each
//! subcommand is one short run; nothing to cancel.

use std::io::Write;
use std::path::PathBuf;

mod cloudformation;
mod stacks;

use super::ExitStatus;
use crate::aws::s3::PutFileError;
use crate::aws::{AwsConfig, Clients, dynamodb, s3};
use crate::config::Environment;
use crate::worker::CallError;

pub use stacks::{
    AMBIGUOUS_OUTPUT, Stack, StackEnvironment, StacksEvent, format_cdk_output, stack_items,
};

/// Why a subcommand failed; printed with the command log.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The stacks event is not JSON of the expected shape.
    #[error("the stacks event is not valid JSON of the expected shape: {0}")]
    BadEvent(serde_json::Error),
    /// A variable the Attini runner container sets is missing.
    #[error("{0} is not set; the Attini runner container sets it")]
    Unset(&'static str),
    /// DynamoDB or CloudFormation refused or failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The artifact could not be stored.
    #[error(transparent)]
    Put(#[from] PutFileError),
}

/// The log file of a command-mode run.
pub const LOG_FILE: &str = "attini-runner-commands.log";

/// Runs a subcommand; returns the exit code.
pub async fn run(args: Vec<String>) -> ExitStatus {
    let args = args.as_slice();
    let log = CommandLog::new();
    let helper = Helper::from_environment(Environment::capture());
    let sub = args.first().map(String::as_str);
    let result = match (sub, &args[args.len().min(1)..]) {
        (Some("version"), _) => {
            println!("{}", crate::VERSION);
            Ok(())
        }
        (Some("format-cdk-output"), [json]) => parse_event(json, &log).map(|event| {
            println!("{}", format_cdk_output(&event));
        }),
        (Some(cmd @ ("save-cdk-stacks" | "register-cdk-stacks")), [json]) => {
            match parse_event(json, &log) {
                Ok(event) => save_stacks(&helper, &event, &log).await.map(|()| {
                    if cmd == "register-cdk-stacks" {
                        log.write("register-cdk-stacks is deprecated; use save-cdk-stacks");
                    }
                }),
                Err(e) => Err(e),
            }
        }
        (Some("store-artifact"), [key, path]) => store_artifact(&helper, key, path, &log).await,
        (Some("stack-outputs"), [stack]) => stack_outputs(&helper, stack, &log).await,
        (Some("stack-events"), [stack]) => stack_events(&helper, stack, &log).await,
        _ => {
            eprintln!("Unknown arguments: {args:?}");
            log.remove();
            return ExitStatus::Failure;
        }
    };
    match result {
        Ok(()) => {
            log.remove();
            ExitStatus::Success
        }
        Err(e) => {
            log.write(&format!("ERROR {e}"));
            eprintln!("Encountered errored, printing logs to error stream");
            log.dump_to_stderr();
            log.remove();
            ExitStatus::Failure
        }
    }
}

fn parse_event(json: &str, log: &CommandLog) -> Result<StacksEvent, CommandError> {
    log.write("parsing the stacks event");
    serde_json::from_str(json).map_err(CommandError::BadEvent)
}

/// What the helpers read of the job's environment, once: its variables, and how AWS is
/// reached (the settings' timeouts; their defaults when a setting is bad, since a helper's
/// job is not to judge the runner's configuration).
struct Helper {
    env: Environment,
    aws: AwsConfig,
}

impl Helper {
    fn from_environment(env: Environment) -> Self {
        let aws = crate::config::aws_lenient(&env);
        Helper { env, aws }
    }

    /// A variable the helper needs.
    fn var(&self, name: &'static str) -> Result<String, CommandError> {
        self.env
            .get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or(CommandError::Unset(name))
    }

    /// The clients; their figures are a helper's own, which nobody reads.
    async fn clients(&self) -> Clients {
        Clients::load(&self.aws, Default::default()).await
    }
}

async fn save_stacks(
    helper: &Helper,
    event: &StacksEvent,
    log: &CommandLog,
) -> Result<(), CommandError> {
    let table = helper.var("ATTINI_RESOURCE_STATE_TABLE")?;
    let region = helper.var("ATTINI_AWS_REGION")?;
    let account = helper.var("ATTINI_AWS_ACCOUNT")?;
    let clients = helper.clients().await;
    for item in stack_items(event, &region, &account) {
        let name = item
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        log.write(&format!("saving stack {name} in {table}"));
        dynamodb::put_strings(&clients.figures, &clients.dynamodb, &table, item).await?;
    }
    Ok(())
}

async fn store_artifact(
    helper: &Helper,
    key: &str,
    path: &str,
    log: &CommandLog,
) -> Result<(), CommandError> {
    let bucket = helper.var("ATTINI_ARTIFACT_STORE")?;
    println!("Storing {path} in artifact store.");
    let clients = helper.clients().await;
    log.write(&format!("putting s3://{bucket}/{key}"));
    s3::put_file(&clients.figures, &clients.s3, &bucket, key, path).await?;
    Ok(())
}

async fn stack_outputs(helper: &Helper, stack: &str, log: &CommandLog) -> Result<(), CommandError> {
    let clients = helper.clients().await;
    log.write(&format!("describing stack {stack}"));
    let outputs = cloudformation::outputs(&clients, stack).await?;
    println!("{outputs}");
    Ok(())
}

async fn stack_events(helper: &Helper, stack: &str, log: &CommandLog) -> Result<(), CommandError> {
    let clients = helper.clients().await;
    log.write(&format!("reading the events of stack {stack}"));
    // Called after a failed deploy: what it cannot read is said, not a second failure.
    match cloudformation::failure_lines(&clients, stack).await {
        Ok(lines) => lines.iter().for_each(|line| println!("{line}")),
        Err(e) => println!("CloudFormation: could not read the events of stack {stack}: {e}"),
    }
    Ok(())
}

/// The command-mode log file.
struct CommandLog {
    path: PathBuf,
}

impl CommandLog {
    fn new() -> Self {
        CommandLog {
            path: PathBuf::from(LOG_FILE),
        }
    }

    fn write(&self, line: &str) {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    fn dump_to_stderr(&self) {
        if let Ok(text) = std::fs::read_to_string(&self.path) {
            eprint!("{text}");
        }
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
