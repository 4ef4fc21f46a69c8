//! `attini-runner command-mode <sub> ...`: the helpers job scripts call through
//! `$ATTINI_RUNNER_EXEC` (CONTRACT.md 8). Their own log goes to `attini-runner-commands.log` in
//! the current directory, is printed to stderr only on error, and is removed at the end.
//! Each subcommand is one short run; nothing to cancel.

use std::io::Write;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ExitStatus;
use crate::aws::s3::PutFileError;
use crate::aws::{Clients, dynamodb, s3};
use crate::worker::CallError;

/// Why a subcommand failed; printed with the command log.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The stacks event is not JSON of the expected shape.
    #[error("the stacks event is not valid JSON of the expected shape: {0}")]
    BadEvent(serde_json::Error),
    /// A variable the Attini runner container sets is missing.
    #[error("{0} is not set; the Attini runner container sets it")]
    Unset(&'static str),
    /// DynamoDB refused or failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The artifact could not be stored.
    #[error(transparent)]
    Put(#[from] PutFileError),
}

/// The log file of a command-mode run.
pub const LOG_FILE: &str = "attini-runner-commands.log";

/// The value given for a stack output when two stacks share a name.
pub const AMBIGUOUS_OUTPUT: &str =
    "Could not resolve stack output, multiple stacks with same name detected in app";

/// The `save-cdk-stacks` / `format-cdk-output` event (unknown keys ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StacksEvent {
    /// Distribution id.
    pub distribution_id: Option<String>,
    /// Distribution name.
    pub distribution_name: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Object identifier of the distribution.
    pub object_identifier: Option<String>,
    /// Step name.
    pub step_name: Option<String>,
    /// `cdk ls --long --json`.
    #[serde(default)]
    pub stacks: Vec<Stack>,
    /// `cdk deploy --outputs-file` content: stack name -> outputs.
    #[serde(default)]
    pub outputs: Map<String, Value>,
}

/// One entry of `cdk ls --long --json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Stack {
    /// CloudFormation stack name.
    #[serde(default)]
    pub name: String,
    /// CDK construct id.
    #[serde(default)]
    pub id: String,
    /// Target account and region.
    #[serde(default)]
    pub environment: StackEnvironment,
}

/// `environment` of a stack.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StackEnvironment {
    /// Region, or `unknown-region`.
    #[serde(default)]
    pub region: String,
    /// Account, or `unknown-account`.
    #[serde(default)]
    pub account: String,
}

/// The step output of a CDK deploy: stack id -> outputs of the stack's name (`{}` when none).
pub fn format_cdk_output(event: &StacksEvent) -> Value {
    let mut out = Map::new();
    for stack in &event.stacks {
        let same_name = event.stacks.iter().filter(|s| s.name == stack.name).count();
        let value = if same_name > 1 {
            Value::String(AMBIGUOUS_OUTPUT.into())
        } else {
            event
                .outputs
                .get(&stack.name)
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()))
        };
        out.insert(stack.id.clone(), value);
    }
    Value::Object(out)
}

/// The resource-state items `save-cdk-stacks` writes, with `unknown-` regions and accounts
/// replaced by `region` and `account`.
pub fn stack_items(event: &StacksEvent, region: &str, account: &str) -> Vec<Vec<(String, String)>> {
    event
        .stacks
        .iter()
        .map(|stack| {
            let r = if stack.environment.region.contains("unknown-")
                || stack.environment.region.is_empty()
            {
                region
            } else {
                &stack.environment.region
            };
            let a = if stack.environment.account.contains("unknown-")
                || stack.environment.account.is_empty()
            {
                account
            } else {
                &stack.environment.account
            };
            let mut item = vec![
                (
                    "resourceType".to_string(),
                    "CloudformationStack".to_string(),
                ),
                ("name".to_string(), format!("{}-{r}-{a}", stack.name)),
                ("stackType".to_string(), "Cdk".to_string()),
            ];
            let optional = [
                ("stepName", &event.step_name),
                ("distributionName", &event.distribution_name),
                ("distributionId", &event.distribution_id),
                ("attiniObjectIdentifier", &event.object_identifier),
                ("environment", &event.environment),
            ];
            for (key, value) in optional {
                if let Some(v) = value {
                    item.push((key.to_string(), v.clone()));
                }
            }
            item
        })
        .collect()
}

/// Runs a subcommand; returns the exit code.
pub async fn run(args: Vec<String>) -> ExitStatus {
    let args = args.as_slice();
    let log = CommandLog::new();
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
                Ok(event) => save_stacks(&event, &log).await.map(|()| {
                    if cmd == "register-cdk-stacks" {
                        log.write("register-cdk-stacks is deprecated; use save-cdk-stacks");
                    }
                }),
                Err(e) => Err(e),
            }
        }
        (Some("store-artifact"), [key, path]) => store_artifact(key, path, &log).await,
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

fn env(name: &'static str) -> Result<String, CommandError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(CommandError::Unset(name))
}

async fn save_stacks(event: &StacksEvent, log: &CommandLog) -> Result<(), CommandError> {
    let table = env("ATTINI_RESOURCE_STATE_TABLE")?;
    let region = env("ATTINI_AWS_REGION")?;
    let account = env("ATTINI_AWS_ACCOUNT")?;
    let clients = Clients::load(Some(region.clone())).await;
    for item in stack_items(event, &region, &account) {
        let name = item
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        log.write(&format!("saving stack {name} in {table}"));
        dynamodb::put_strings(&clients.dynamodb, &table, item).await?;
    }
    Ok(())
}

async fn store_artifact(key: &str, path: &str, log: &CommandLog) -> Result<(), CommandError> {
    let bucket = env("ATTINI_ARTIFACT_STORE")?;
    println!("Storing {path} in artifact store.");
    let clients = Clients::load(std::env::var("ATTINI_AWS_REGION").ok()).await;
    log.write(&format!("putting s3://{bucket}/{key}"));
    s3::put_file(&clients.s3, &bucket, key, path).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(value: Value) -> StacksEvent {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn outputs_are_keyed_by_stack_id() {
        let e = event(json!({
            "requestType": "format-cdk-stacks-output", "extra": 1,
            "stacks": [
                {"name": "app-db", "id": "Db", "environment": {"region": "eu-west-1", "account": "1", "name": "x"}},
                {"name": "app-web", "id": "Web", "environment": {"region": "eu-west-1", "account": "1"}}
            ],
            "outputs": {"app-db": {"Arn": "arn:x"}}
        }));
        assert_eq!(
            format_cdk_output(&e),
            json!({"Db": {"Arn": "arn:x"}, "Web": {}})
        );
    }

    #[test]
    fn stacks_sharing_a_name_are_ambiguous() {
        let e = event(
            json!({"stacks": [{"name": "s", "id": "A"}, {"name": "s", "id": "B"}], "outputs": {"s": {"k": "v"}}}),
        );
        assert_eq!(
            format_cdk_output(&e),
            json!({"A": AMBIGUOUS_OUTPUT, "B": AMBIGUOUS_OUTPUT})
        );
    }

    #[test]
    fn unknown_environments_are_replaced() {
        let e = event(json!({
            "distributionId": "d1", "distributionName": "demo", "environment": "dev",
            "objectIdentifier": "o#1", "stepName": "Deploy",
            "stacks": [{"name": "s", "id": "S", "environment": {"region": "unknown-region", "account": "unknown-account"}}]
        }));
        let items = stack_items(&e, "eu-north-1", "111122223333");
        assert_eq!(
            items[0],
            [
                ("resourceType", "CloudformationStack"),
                ("name", "s-eu-north-1-111122223333"),
                ("stackType", "Cdk"),
                ("stepName", "Deploy"),
                ("distributionName", "demo"),
                ("distributionId", "d1"),
                ("attiniObjectIdentifier", "o#1"),
                ("environment", "dev"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }
}
