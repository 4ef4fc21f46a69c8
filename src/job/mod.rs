//! The job model: one [`JobSpec`] for both message formats, parsed once at the edge.
//!
//! A message body is either an Attini `RunnerInput` (CONTRACT.md 5.2, detected by its
//! `deploymentPlanExecutionMetadata` key, see [`attini`]) or a native job (DESIGN.md section 3,
//! see [`native`]). Everything after parsing works on [`JobSpec`] only. Parsing is pure and
//! synchronous: there is nothing to cancel.

pub mod attini;
mod cdk;
mod cdk_args;
mod field_checks;
mod job_kind;
mod kinds;
pub mod native;
mod sam;
pub mod secret_ref;
pub(crate) mod shell_words;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use field_checks::{ParseError, check_variable_name, role_arn};
pub use job_kind::{JobKind, Tool};
pub use secret_ref::SecretRef;

/// Largest message body accepted, in bytes. SQS itself caps bodies at 256 KiB; a job file in
/// local mode gets the same limit so that what runs locally also fits the queue.
pub const MAX_BODY_BYTES: usize = 262_144;

/// Which wire format a job arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFormat {
    /// The Attini dispatcher's `RunnerInput` (CONTRACT.md 5.2).
    Attini,
    /// The native format of DESIGN.md section 3.
    Native,
}

/// Where a job's distribution comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistributionRef {
    /// A zip object in S3. `identity` is a stable id of the object's content (the Attini
    /// `objectIdentifier`, or a version id) used as the cache key when present.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Object key of the zip.
        key: String,
        /// Content identity for the cache; `None` means "ask S3 for the ETag".
        identity: Option<String>,
    },
    /// A zip file or a directory on this machine (local mode).
    Local {
        /// Path of the zip or directory, already resolved against the job file's folder.
        path: PathBuf,
    },
}

/// The Attini deployment context of a job (CONTRACT.md 5.2, 5.7). Present for Attini jobs only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttiniContext {
    /// `deploymentOriginData.environment`.
    pub environment: String,
    /// `deploymentOriginData.distributionName`.
    pub distribution_name: String,
    /// `deploymentOriginData.distributionId`.
    pub distribution_id: String,
    /// `deploymentOriginData.objectIdentifier` (`<key>#<versionId>`).
    pub object_identifier: String,
    /// `deploymentOriginData.deploymentSource.deploymentSourceBucket`.
    pub source_bucket: String,
    /// `deploymentOriginData.deploymentSource.deploymentSourcePrefix`.
    pub source_prefix: String,
    /// `deploymentPlanExecutionMetadata.executionArn`.
    pub execution_arn: String,
    /// `deploymentPlanExecutionMetadata.retryCounter` (0 when absent).
    pub retry_counter: i64,
    /// `taskConfigHashCode`, opaque; 0 when absent, as the Attini Runner does.
    pub config_hash: i64,
}

impl AttiniContext {
    /// The execution name: the part of the execution ARN after the last `:`.
    pub fn execution_name(&self) -> &str {
        self.execution_arn.rsplit(':').next().unwrap_or_default()
    }

    /// `<environment>-<distributionName>`, the deploy-data table key (CONTRACT.md 5.4).
    pub fn deployment_name(&self) -> String {
        format!("{}-{}", self.environment, self.distribution_name)
    }
}

/// One job, whatever format it came in. Built only by [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// The wire format it was parsed from.
    pub format: JobFormat,
    /// Step Functions task token; `None` only where the format allowed it to be absent
    /// (local mode). AWS modes reject a job without one.
    pub token: Option<String>,
    /// What the job is: a command list (every Attini job), or the native `kind` its commands
    /// were generated from.
    pub kind: JobKind,
    /// Step name, when known (Attini `stepName`, native `stepName`).
    pub step_name: Option<String>,
    /// Shell commands, run in order in one bash with `set -eo pipefail`.
    pub commands: Vec<String>,
    /// Variables for the commands, passed as environment (never pasted into script text).
    pub environment: BTreeMap<String, String>,
    /// Like `environment`, and every value is redacted from logs, causes and output.
    pub secret_environment: BTreeMap<String, String>,
    /// Secret variables whose value the runner reads (AWS modes) before the job starts; they
    /// then join `secret_environment`. See [`secret_ref`].
    pub secret_references: BTreeMap<String, SecretRef>,
    /// The JSON written to the file named by `$ATTINI_INPUT`.
    pub input: Value,
    /// The distribution to extract into the workspace, if any.
    pub distribution: Option<DistributionRef>,
    /// Directory inside the distribution to run in (relative, no `..`).
    pub working_directory: Option<String>,
    /// Job timeout; `None` means the runner's default (`ATTINI_JOB_TIMEOUT`, 3600 s).
    pub timeout: Option<Duration>,
    /// Step Functions heartbeat interval wanted by the job (native `heartbeatSeconds`).
    pub heartbeat: Option<Duration>,
    /// How long the job is expected to run (native `expectedSeconds`); a stop lets it finish
    /// when that fits before the stop deadline. `None`: learned from its recent runs here.
    pub expected: Option<Duration>,
    /// False (native `interruptible: false`, a migration): the job must not be cut short and
    /// run again. A stop never interrupts it early and hands it back if it has not started.
    pub interruptible: bool,
    /// A lock across runners (native `lock`): jobs naming the same lock run one at a time, in
    /// arrival order, on the runners sharing `ATTINI_LOCK_TABLE`.
    pub lock: Option<String>,
    /// Tool caches kept between jobs (native `caches`), as folders relative to `HOME`: `npm`
    /// is `.npm`, `maven` `.m2`, and so on ([`field_checks::CACHE_NAMES`]).
    pub caches: Vec<String>,
    /// Folders of the working directory kept between jobs (native `workspaceCaches`, such
    /// as `node_modules`): put back while their key files are unchanged. See
    /// [`crate::engine::workspace_caches`].
    pub workspace_caches: Vec<WorkspaceCache>,
    /// The IAM role the job's commands run as (native `role`); `None`: the runner's default
    /// job role (`ATTINI_JOB_ROLE_ARN`), if any. See [`crate::credentials`].
    pub role: Option<String>,
    /// The Step Functions execution the job belongs to (native `executionArn`, Attini
    /// `executionArn`), for the role session's name and tags.
    pub execution: Option<String>,
    /// Attini deployment context (Attini jobs only).
    pub attini: Option<AttiniContext>,
}

/// A folder of the job's working directory kept between jobs (native `workspaceCaches`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceCache {
    /// The folder, relative to the working directory, without `..` (`node_modules`).
    pub path: String,
    /// Files relative to the working directory whose contents key the folder
    /// (`package-lock.json`): it is put back only while they are unchanged.
    pub key_files: Vec<String>,
}

/// Parses a message body (an SQS body or a job file) in either format.
///
/// Errors name the field, what was wrong and the value's type; see [`ParseError`].
pub fn parse(body: &str) -> Result<JobSpec, ParseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge {
            bytes: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let value: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson {
        detail: e.to_string(),
    })?;
    let Value::Object(map) = &value else {
        return Err(ParseError::NotObject {
            found: field_checks::type_name(&value),
        });
    };
    if map.contains_key("deploymentPlanExecutionMetadata") {
        attini::parse(value)
    } else if map.contains_key("Properties") {
        Err(ParseError::field(
            "deploymentPlanExecutionMetadata",
            "is missing; a message with `Properties` must be a complete Attini RunnerInput",
        ))
    } else {
        native::parse(body)
    }
}

/// Best effort: the task token of a body that failed to parse, so the failure can still be
/// reported to Step Functions. Looks at `taskToken` and
/// `deploymentPlanExecutionMetadata.sfnToken`; `None` for non-JSON or a missing/empty token.
pub fn salvage_token(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let token = value
        .get("taskToken")
        .or_else(|| value.pointer("/deploymentPlanExecutionMetadata/sfnToken"))?
        .as_str()?;
    (!token.trim().is_empty()).then(|| token.to_string())
}

/// Hex digits in a [`task_id`].
pub const TASK_ID_CHARS: usize = 12;

/// A short public name of the task a token answers: the first [`TASK_ID_CHARS`] hex digits of
/// the token's SHA-256. The runner tags every log line of the job with it (`span.task`, and
/// `[step #<task id>]` on each output line), and `attini-runner logs` computes it from the
/// token in the execution's history, so one job's lines are found in a shared log group
/// without the token itself (a credential) being written anywhere.
pub fn task_id(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest
        .iter()
        .take(TASK_ID_CHARS / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}
#[cfg(test)]
mod tests;
