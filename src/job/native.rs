//! The native job format (DESIGN.md section 3), sent by any state machine with
//! `sqs:sendMessage.waitForTaskToken`. Unknown fields are an error, never ignored, so a
//! typo such as `timeoutSecond` is caught instead of silently running with defaults.
//! Pure parsing; nothing to cancel.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::fields::{self, ParseError};
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeDistribution {
    bucket: Option<String>,
    key: Option<String>,
    path: Option<String>,
}

/// Parses a native job body.
pub fn parse(body: &str) -> Result<JobSpec, ParseError> {
    let de = &mut serde_json::Deserializer::from_str(body);
    let job: NativeJob = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let detail = e.into_inner().to_string();
        ParseError::field(
            if path == "." {
                "(top level)".into()
            } else {
                path
            },
            format!("is invalid: {detail}"),
        )
    })?;

    let token = match job.task_token {
        Some(t) if t.trim().is_empty() => return Err(ParseError::field("taskToken", "is empty")),
        other => other,
    };
    let commands = match (job.commands, job.kind) {
        (Some(_), Some(_)) => {
            return Err(ParseError::field(
                "kind",
                "cannot be combined with `commands`: give either a command list or a kind",
            ));
        }
        (Some(commands), None) => {
            if job.properties.is_some() {
                return Err(ParseError::field("properties", "is only used with `kind`"));
            }
            let commands = fields::commands(&commands, "commands")?;
            if commands.is_empty() {
                return Err(ParseError::field(
                    "commands",
                    "is empty: give at least one command",
                ));
            }
            commands
        }
        (None, Some(kind)) => super::kinds::commands(&kind, job.properties.as_ref())?,
        (None, None) => {
            return Err(ParseError::field(
                "commands",
                "is missing: give a list of shell commands (or a `kind` of `cdk` or `sam`)",
            ));
        }
    };

    let environment = fields::environment(&job.environment, "environment")?;
    let secret_environment = fields::environment(&job.secret_environment, "secretEnvironment")?;
    if let Some(name) = environment
        .keys()
        .find(|k| secret_environment.contains_key(*k))
    {
        return Err(ParseError::field(
            format!("secretEnvironment.{name}"),
            "is also in `environment`: give each variable once",
        ));
    }

    let distribution = job.distribution.map(distribution).transpose()?;
    let working_directory = job
        .working_directory
        .map(|d| fields::relative_dir(&d, "workingDirectory"))
        .transpose()?;

    Ok(JobSpec {
        format: JobFormat::Native,
        token,
        step_name: job.step_name,
        commands,
        environment,
        secret_environment,
        input: job
            .input
            .unwrap_or_else(|| Value::Object(Default::default())),
        distribution,
        working_directory,
        timeout: seconds(job.timeout_seconds, "timeoutSeconds")?,
        heartbeat: seconds(job.heartbeat_seconds, "heartbeatSeconds")?,
        attini: None,
    })
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
