//! The native job format (DESIGN.md section 3), sent by any state machine with
//! `sqs:sendMessage.waitForTaskToken`. Unknown fields are an error, never ignored, so a
//! typo such as `timeoutSecond` is caught instead of silently running with defaults.
//! Pure parsing; nothing to cancel.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::SecretRef;
use super::field_checks::{self, ParseError};
use super::{DistributionRef, JobFormat, JobSpec};

/// Longest `timeoutSeconds` / `heartbeatSeconds` accepted: one year, the Step Functions maximum.
pub const MAX_SECONDS: u64 = 31_536_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeJob {
    task_token: Option<String>,
    step_name: Option<String>,
    commands: Option<Value>,
    kind: Option<String>,
    properties: Option<Value>,
    #[serde(default)]
    environment: Value,
    #[serde(default)]
    secret_environment: Value,
    input: Option<Value>,
    distribution: Option<NativeDistribution>,
    working_directory: Option<String>,
    timeout_seconds: Option<u64>,
    heartbeat_seconds: Option<u64>,
    expected_seconds: Option<u64>,
    interruptible: Option<bool>,
    lock: Option<String>,
    caches: Option<Vec<String>>,
    workspace_caches: Option<Vec<NativeWorkspaceCache>>,
    role: Option<String>,
    execution_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeDistribution {
    bucket: Option<String>,
    key: Option<String>,
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NativeWorkspaceCache {
    path: String,
    key_files: Vec<String>,
}

/// Parses a native job body.
pub fn parse(body: &str) -> Result<JobSpec, ParseError> {
    let job = deserialize(body)?;
    let token = match job.task_token {
        Some(t) if t.trim().is_empty() => return Err(ParseError::field("taskToken", "is empty")),
        other => other,
    };
    let kind = job
        .kind
        .as_deref()
        .and_then(super::JobKind::from_name)
        .unwrap_or(super::JobKind::Commands);
    let commands = commands(job.commands, job.kind, job.properties.as_ref())?;
    let (environment, (secret_environment, secret_references)) =
        variables(&job.environment, &job.secret_environment)?;
    let distribution = job.distribution.map(distribution).transpose()?;
    let working_directory = job
        .working_directory
        .map(|d| field_checks::relative_dir(&d, "workingDirectory"))
        .transpose()?;
    Ok(JobSpec {
        format: JobFormat::Native,
        kind,
        token,
        step_name: job.step_name,
        commands,
        environment,
        secret_environment,
        secret_references,
        input: job
            .input
            .unwrap_or_else(|| Value::Object(Default::default())),
        distribution,
        working_directory,
        timeout: seconds(job.timeout_seconds, "timeoutSeconds")?,
        heartbeat: seconds(job.heartbeat_seconds, "heartbeatSeconds")?,
        expected: seconds(job.expected_seconds, "expectedSeconds")?,
        interruptible: job.interruptible.unwrap_or(true),
        lock: job
            .lock
            .map(|l| field_checks::lock_name(&l, "lock"))
            .transpose()?,
        caches: job
            .caches
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, c)| field_checks::cache_folder(c, &format!("caches[{i}]")))
            .collect::<Result<_, _>>()?,
        workspace_caches: job
            .workspace_caches
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                field_checks::workspace_cache(c.path, c.key_files, &format!("workspaceCaches[{i}]"))
            })
            .collect::<Result<_, _>>()?,
        role: job
            .role
            .map(|r| field_checks::role_arn(&r, "role"))
            .transpose()?,
        execution: job
            .execution_arn
            .filter(|e| !e.trim().is_empty())
            .map(|e| e.trim().to_string()),
        attini: None,
    })
}

/// The body as a [`NativeJob`]; errors name the JSON path.
fn deserialize(body: &str) -> Result<NativeJob, ParseError> {
    let de = &mut serde_json::Deserializer::from_str(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let detail = e.into_inner().to_string();
        let path = if path == "." {
            "(top level)".into()
        } else {
            path
        };
        ParseError::field(path, format!("is invalid: {detail}"))
    })
}

/// The command list, given directly or generated from a `kind`.
fn commands(
    commands: Option<Value>,
    kind: Option<String>,
    properties: Option<&Value>,
) -> Result<Vec<String>, ParseError> {
    match (commands, kind) {
        (Some(_), Some(_)) => Err(ParseError::field(
            "kind",
            "cannot be combined with `commands`: give either a command list or a kind",
        )),
        (Some(commands), None) => {
            if properties.is_some() {
                return Err(ParseError::field("properties", "is only used with `kind`"));
            }
            let commands = field_checks::commands(&commands, "commands")?;
            if commands.is_empty() {
                return Err(ParseError::field(
                    "commands",
                    "is empty: give at least one command",
                ));
            }
            Ok(commands)
        }
        (None, Some(kind)) => super::kinds::commands(&kind, properties),
        (None, None) => Err(ParseError::field(
            "commands",
            "is missing: give a list of shell commands (or a `kind` of `cdk` or `sam`)",
        )),
    }
}

/// Variable name -> value.
type Variables = BTreeMap<String, String>;

/// Variable name -> where its secret value is read.
type References = BTreeMap<String, SecretRef>;

/// `environment` and `secretEnvironment` (values, and references to read); a variable may be
/// in only one of them.
fn variables(
    environment: &Value,
    secret_environment: &Value,
) -> Result<(Variables, (Variables, References)), ParseError> {
    let environment = field_checks::environment(environment, "environment")?;
    let secrets = secret_variables(secret_environment)?;
    let names = secrets.0.keys().chain(secrets.1.keys());
    if let Some(name) = names.into_iter().find(|k| environment.contains_key(*k)) {
        return Err(ParseError::field(
            format!("secretEnvironment.{name}"),
            "is also in `environment`: give each variable once",
        ));
    }
    Ok((environment, secrets))
}

/// `secretEnvironment`: an object value is a reference ([`SecretRef`]), anything else a value.
fn secret_variables(value: &Value) -> Result<(Variables, References), ParseError> {
    let Value::Object(map) = value else {
        return Ok((
            field_checks::environment(value, "secretEnvironment")?,
            References::new(),
        ));
    };
    let (objects, values): (
        serde_json::Map<String, Value>,
        serde_json::Map<String, Value>,
    ) = map.clone().into_iter().partition(|(_, v)| v.is_object());
    let values = field_checks::environment(&Value::Object(values), "secretEnvironment")?;
    let mut references = References::new();
    for (name, value) in &objects {
        let path = format!("secretEnvironment.{name}");
        field_checks::check_variable_name(name, &path)?;
        references.insert(name.clone(), SecretRef::parse(value, &path)?);
    }
    Ok((values, references))
}

fn distribution(d: NativeDistribution) -> Result<DistributionRef, ParseError> {
    match (d.bucket, d.key, d.path) {
        (Some(bucket), Some(key), None) if !bucket.is_empty() && !key.is_empty() => {
            Ok(DistributionRef::S3 {
                bucket,
                key,
                identity: None,
            })
        }
        (None, None, Some(path)) if !path.is_empty() => Ok(DistributionRef::Local {
            path: PathBuf::from(path),
        }),
        _ => Err(ParseError::field(
            "distribution",
            "must be either {\"bucket\": ..., \"key\": ...} (a zip in S3) or {\"path\": ...} (a local zip or folder, local mode only), with non-empty values",
        )),
    }
}

fn seconds(value: Option<u64>, path: &str) -> Result<Option<Duration>, ParseError> {
    match value {
        None => Ok(None),
        Some(s) if (1..=MAX_SECONDS).contains(&s) => Ok(Some(Duration::from_secs(s))),
        Some(s) => Err(ParseError::field(
            path,
            format!("must be between 1 and {MAX_SECONDS} seconds, got {s}"),
        )),
    }
}
