//! The Attini `RunnerInput` message (CONTRACT.md 5.2) as the dispatcher sends it: nulls
//! present, extra keys tolerated, numbers and booleans in `Commands` and `Environment`
//! turned into strings. Pure parsing; nothing to cancel.

use std::collections::BTreeMap;

use serde_json::Value;

use super::field_checks::{self, ParseError, join, required_str};
use super::{AttiniContext, DistributionRef, JobFormat, JobSpec};

/// Top-level keys removed from the body to form the `$ATTINI_INPUT` file (CONTRACT.md 5.6.2).
pub const INPUT_EXCLUDED_KEYS: [&str; 4] = [
    "Properties",
    "RunnerConfig",
    "attiniActionType",
    "deploymentPlanExecutionMetadata",
];

/// Parses an Attini message already known to be a JSON object.
pub fn parse(body: Value) -> Result<JobSpec, ParseError> {
    let (commands, environment) = properties(&body)?;
    let meta = metadata(&body)?;
    let context = context(&body, meta.execution_arn, meta.retry_counter)?;
    let distribution = DistributionRef::S3 {
        bucket: context.source_bucket.clone(),
        key: format!(
            "{}/{}.zip",
            context.source_prefix, context.distribution_name
        ),
        identity: Some(context.object_identifier.clone()),
    };
    let mut input = body;
    if let Value::Object(map) = &mut input {
        for key in INPUT_EXCLUDED_KEYS {
            map.shift_remove(key);
        }
    }
    Ok(JobSpec {
        format: JobFormat::Attini,
        kind: super::JobKind::Commands,
        token: meta.token,
        step_name: Some(meta.step_name),
        commands,
        environment,
        secret_environment: Default::default(),
        secret_references: Default::default(),
        input,
        distribution: Some(distribution),
        working_directory: None,
        timeout: None,
        heartbeat: None,
        expected: None,
        interruptible: true,
        lock: None,
        caches: Vec::new(),
        workspace_caches: Vec::new(),
        role: None,
        execution: Some(context.execution_arn.clone()),
        attini: Some(context),
    })
}

/// `Properties.Commands` (required) and `Properties.Environment`.
fn properties(body: &Value) -> Result<(Vec<String>, BTreeMap<String, String>), ParseError> {
    let properties = object(body, "", "Properties")?;
    let commands = match properties.get("Commands") {
        None | Some(Value::Null) => {
            return Err(ParseError::field("Properties.Commands", "is missing"));
        }
        Some(v) => field_checks::commands(v, "Properties.Commands")?,
    };
    let environment = match properties.get("Environment") {
        None => Default::default(),
        Some(v) => field_checks::environment(v, "Properties.Environment")?,
    };
    Ok((commands, environment))
}

/// What `deploymentPlanExecutionMetadata` holds.
struct Metadata {
    token: Option<String>,
    step_name: String,
    execution_arn: String,
    retry_counter: i64,
}

fn metadata(body: &Value) -> Result<Metadata, ParseError> {
    let meta_path = "deploymentPlanExecutionMetadata";
    let meta = object(body, "", meta_path)?;
    let token = match meta.get("sfnToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(ParseError::field(join(meta_path, "sfnToken"), "is empty"));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(ParseError::field(
                join(meta_path, "sfnToken"),
                format!("must be a string, got {}", field_checks::type_name(other)),
            ));
        }
    };
    Ok(Metadata {
        token,
        step_name: required_str(meta, meta_path, "stepName")?,
        execution_arn: required_str(meta, meta_path, "executionArn")?,
        retry_counter: optional_int(meta, meta_path, "retryCounter")?,
    })
}

/// The deployment context from `deploymentOriginData` and `taskConfigHashCode`.
fn context(
    body: &Value,
    execution_arn: String,
    retry_counter: i64,
) -> Result<AttiniContext, ParseError> {
    let origin_path = "deploymentOriginData";
    let origin = object(body, "", origin_path)?;
    let source_path = join(origin_path, "deploymentSource");
    let source = object(origin, origin_path, "deploymentSource")?;
    Ok(AttiniContext {
        environment: required_str(origin, origin_path, "environment")?,
        distribution_name: required_str(origin, origin_path, "distributionName")?,
        distribution_id: required_str(origin, origin_path, "distributionId")?,
        object_identifier: required_str(origin, origin_path, "objectIdentifier")?,
        source_bucket: required_str(source, &source_path, "deploymentSourceBucket")?,
        source_prefix: required_str(source, &source_path, "deploymentSourcePrefix")?,
        execution_arn,
        retry_counter,
        config_hash: optional_int(body, "", "taskConfigHashCode")?,
    })
}

/// A required object-valued field.
fn object<'a>(parent: &'a Value, parent_path: &str, key: &str) -> Result<&'a Value, ParseError> {
    let path = join(parent_path, key);
    match parent.get(key) {
        Some(v @ Value::Object(_)) => Ok(v),
        None | Some(Value::Null) => Err(ParseError::field(path, "is missing")),
        Some(other) => Err(ParseError::field(
            path,
            format!("must be an object, got {}", field_checks::type_name(other)),
        )),
    }
}

/// An optional integer field (absent or null means 0; a numeric string is accepted).
fn optional_int(parent: &Value, parent_path: &str, key: &str) -> Result<i64, ParseError> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
            Ok(s.trim().parse::<i64>().unwrap_or_default())
        }
        Some(other) => Err(ParseError::field(
            join(parent_path, key),
            format!("must be an integer, got {other}"),
        )),
    }
}
