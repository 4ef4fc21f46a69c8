//! Every setting of the runner, parsed once at start from an injected lookup (the process
//! environment, or a map in tests). Each setting's name, default, accepted range and meaning
//! live in one [`Setting`] below; the parsers (`values.rs`) read them from there, and the README's settings
//! table is rendered from them ([`markdown_table`], kept in sync by a test). A bad value is a
//! [`ConfigError`] naming the variable, the value and what is accepted (exit code 64).
//! Command-line flags override the environment after parsing. Pure; nothing to cancel.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod catalog;
mod environment;
mod values;

use crate::aws::ecs_agent::AGENT_VAR;
use crate::aws::{AwsConfig, AwsTimeouts};
use crate::engine::EngineConfig;
use crate::engine::distribution::ExtractLimits;
use crate::engine::tools::ToolPaths;
use crate::worker::WorkerConfig;
use crate::worker::protection::ProtectionConfig;

pub use catalog::*;
pub use environment::Environment;
use values::{duration, flag};
pub use values::{number, ops_addr, required, s3_object};

/// Why the configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    /// The variable or flag.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What would be accepted.
    pub expected: String,
}

/// The settings of Attini mode that only the Attini dispatcher sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttiniSettings {
    /// [`DEPLOY_DATA_TABLE`].
    pub deploy_data_table: Option<String>,
    /// [`RESOURCE_STATE_TABLE`].
    pub resource_state_table: Option<String>,
    /// [`RUNNER_RESOURCE_NAME`].
    pub resource_name: Option<String>,
    /// [`CONFIGURATION_HASH`]; 0 when absent or not a number, as with the Attini Runner.
    pub config_hash: i64,
    /// [`EC2_INSTANCE_ID`].
    pub ec2_instance_id: Option<String>,
    /// [`STARTUP_COMMANDS_TIMEOUT`], default 3600 s.
    pub startup_timeout: Duration,
}

/// All settings, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// What the job engine needs.
    pub engine: EngineConfig,
    /// What the warm loop needs; `idle_ttl` is `None` when unset (each mode has its default).
    pub worker: WorkerConfig,
    /// [`QUEUE_URL`].
    pub queue_url: Option<String>,
    /// [`AWS_REGION`].
    pub region: Option<String>,
    /// The SDK's own region variable (`AWS_REGION`, else `AWS_DEFAULT_REGION`).
    pub sdk_region: Option<String>,
    /// How the AWS clients are built: [`AWS_CONNECT_TIMEOUT`], [`AWS_ATTEMPT_TIMEOUT`],
    /// [`AWS_OPERATION_TIMEOUT`], the region, the endpoint overrides.
    pub aws: AwsConfig,
    /// `ECS_CONTAINER_METADATA_URI_V4`, which ECS sets in a task.
    pub ecs_metadata_uri: Option<String>,
    /// The environment the settings were read from (empty when read through a lookup).
    pub env: Environment,
    /// Attini mode only.
    pub attini: AttiniSettings,
    /// The tracing filter from `RUST_LOG` or [`LOG_LEVEL`]; `None`: the mode's default.
    pub log_filter: Option<String>,
    /// `ECS_AGENT_URI`, which ECS sets in a task: where scale-in protection is asked for.
    pub ecs_agent_uri: Option<String>,
    /// [`TASK_PROTECTION_MINUTES`].
    pub task_protection: ProtectionConfig,
    /// Job roles: [`JOB_ROLE_ARN`], [`JOB_ROLE_SESSION_SECONDS`], [`JOB_ROLE_REFRESH_SECONDS`].
    pub job_roles: crate::credentials::JobRoleConfig,
    /// [`REFUSE_LITERAL_SECRETS`].
    pub refuse_literal_secrets: bool,
    /// [`LOCK_TABLE`]; `None`: jobs with a `lock` are refused.
    pub lock_table: Option<String>,
    /// [`LOCK_LEASE`].
    pub lock_lease: Duration,
    /// [`TOOL_CACHE_SEED`] as (bucket, key); `None` when unset.
    pub tool_cache_seed: Option<(String, String)>,
    /// [`OPS_ADDR`]; `None` when `off`.
    pub ops_addr: Option<SocketAddr>,
    /// [`METRICS_INTERVAL`] when [`METRICS`] is `emf`; `None` when off.
    pub emf_interval: Option<Duration>,
}

/// Where the ops server listens when [`OPS_ADDR`] is unset.
pub const DEFAULT_OPS_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// What answering an interrupted job takes besides ending its processes: the last log
/// upload and the report (the drain grace leaves it before the stop timeout).
pub const ANSWER_TIME: Duration = Duration::from_secs(5);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_environment(Environment::capture())
    }

    /// Reads `env`, and keeps it.
    pub fn from_environment(env: Environment) -> Result<Self, ConfigError> {
        let mut settings = Self::from_lookup(|key| env.get(key).map(str::to_string))?;
        // Every variable's name is known now: the `OTEL_*` ones are withheld too.
        settings.job_roles.withheld = job_role_withheld(env.names());
        settings.env = env;
        Ok(settings)
    }

    /// Reads every setting through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |s: &Setting| lookup(s.name).filter(|v| !v.trim().is_empty());
        let engine = EngineConfig {
            work_dir: get(&WORK_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("attini-runner")),
            job_timeout: duration(&lookup, &JOB_TIMEOUT)?.unwrap_or_default(),
            kill_grace: duration(&lookup, &KILL_GRACE)?.unwrap_or_default(),
            workspace_timeout: duration(&lookup, &WORKSPACE_TIMEOUT)?.unwrap_or_default(),
            limits: ExtractLimits {
                max_bytes: number(&lookup, &DISTRIBUTION_MAX_BYTES)?.unwrap_or_default(),
                ..ExtractLimits::default()
            },
            cache_bytes: number(&lookup, &DISTRIBUTION_CACHE_BYTES)?.unwrap_or_default(),
            tool_cache_bytes: number(&lookup, &TOOL_CACHE_BYTES)?.unwrap_or_default(),
            tools: ToolPaths {
                cdk: get(&CDK_CLI),
                sam: get(&SAM_CLI),
            },
            // A runner image may point jobs at another helper; otherwise it is this binary.
            runner_exec: match lookup("ATTINI_RUNNER_EXEC") {
                Some(_) => None,
                None => Some(this_program()),
            },
            base_path: lookup("PATH").unwrap_or_default(),
            runner_secrets: crate::engine::redact::RUNNER_SECRETS
                .iter()
                .filter_map(|name| lookup(name))
                .collect::<Vec<_>>()
                .into(),
        };
        let worker = WorkerConfig {
            max_jobs: number(&lookup, &MAX_CONCURRENT_JOBS)?.unwrap_or(5) as usize,
            idle_ttl: duration(&lookup, &IDLE_TTL)?,
            receive_wait: duration(&lookup, &RECEIVE_WAIT)?.unwrap_or_default(),
            drain_grace: match duration(&lookup, &DRAIN_GRACE)? {
                Some(grace) => grace,
                None => duration(&lookup, &STOP_TIMEOUT)?
                    .unwrap_or_default()
                    .saturating_sub(engine.kill_grace + ANSWER_TIME),
            },
            report_retries: crate::worker::answer::Retries {
                refused: duration(&lookup, &REPORT_DENIED_RETRY)?.unwrap_or_default(),
                ..Default::default()
            },
            max_lease: crate::worker::SQS_MAX_LEASE,
            max_runner_failures: number(&lookup, &MAX_RUNNER_FAILURES)?.unwrap_or(5) as u32,
        };
        let attini = AttiniSettings {
            deploy_data_table: get(&DEPLOY_DATA_TABLE),
            resource_state_table: get(&RESOURCE_STATE_TABLE),
            resource_name: get(&RUNNER_RESOURCE_NAME),
            config_hash: get(&CONFIGURATION_HASH)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            ec2_instance_id: get(&EC2_INSTANCE_ID),
            startup_timeout: duration(&lookup, &STARTUP_COMMANDS_TIMEOUT)?.unwrap_or_default(),
        };
        Ok(Settings {
            engine,
            worker,
            queue_url: get(&QUEUE_URL),
            region: get(&AWS_REGION),
            sdk_region: sdk_region(&lookup),
            aws: aws_config(&lookup, timeouts(&lookup)?),
            ecs_metadata_uri: lookup(crate::aws::ecs::METADATA_VAR),
            env: Environment::default(),
            attini,
            log_filter: log_filter(&lookup)?,
            ecs_agent_uri: lookup(AGENT_VAR).filter(|v| !v.trim().is_empty()),
            task_protection: ProtectionConfig {
                minutes: number(&lookup, &TASK_PROTECTION_MINUTES)?.unwrap_or(15) as u32,
                max_minutes: number(&lookup, &TASK_PROTECTION_MAX_MINUTES)?.unwrap_or(60) as u32,
            },
            job_roles: job_roles(&lookup)?,
            refuse_literal_secrets: flag(&lookup, &REFUSE_LITERAL_SECRETS)?,
            lock_table: get(&LOCK_TABLE),
            lock_lease: duration(&lookup, &LOCK_LEASE)?.unwrap_or_default(),
            tool_cache_seed: get(&TOOL_CACHE_SEED).map(s3_object).transpose()?,
            ops_addr: ops_addr(get(&OPS_ADDR))?,
            emf_interval: match get(&METRICS).map(|v| v.trim().to_ascii_lowercase()) {
                None => None,
                Some(v) if v == "off" => None,
                Some(v) if v == "emf" => duration(&lookup, &METRICS_INTERVAL)?,
                Some(_) => {
                    return Err(ConfigError {
                        key: METRICS.name.into(),
                        value: get(&METRICS).unwrap_or_default(),
                        expected: "`emf` (CloudWatch Embedded Metric Format on stdout) or `off`"
                            .into(),
                    });
                }
            },
        })
    }
}

/// The runner's own program, which jobs call as `$ATTINI_RUNNER_EXEC`.
#[allow(clippy::disallowed_methods)] // Read here, once, with the settings.
fn this_program() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("attini-runner"))
}

/// [`AWS_CONNECT_TIMEOUT`], [`AWS_ATTEMPT_TIMEOUT`], [`AWS_OPERATION_TIMEOUT`].
fn timeouts(lookup: &impl Fn(&str) -> Option<String>) -> Result<AwsTimeouts, ConfigError> {
    Ok(AwsTimeouts {
        connect: duration(lookup, &AWS_CONNECT_TIMEOUT)?.unwrap_or_default(),
        attempt: duration(lookup, &AWS_ATTEMPT_TIMEOUT)?.unwrap_or_default(),
        operation: duration(lookup, &AWS_OPERATION_TIMEOUT)?.unwrap_or_default(),
    })
}

/// How the AWS clients are built from the environment: [`AWS_REGION`] when the SDK's own
/// variables name none, path-style S3 and the EC2 endpoint under an endpoint override.
fn aws_config(lookup: &impl Fn(&str) -> Option<String>, timeouts: AwsTimeouts) -> AwsConfig {
    let set = |name: &str| lookup(name).filter(|v| !v.is_empty());
    AwsConfig {
        region: match sdk_region(lookup) {
            Some(_) => None,
            None => set(AWS_REGION.name),
        },
        path_style: set("AWS_ENDPOINT_URL").is_some() || set("AWS_ENDPOINT_URL_S3").is_some(),
        ec2_endpoint: set("AWS_ENDPOINT_URL_EC2").or_else(|| set("AWS_ENDPOINT_URL")),
        timeouts,
    }
}

/// The SDK's own region variable: `AWS_REGION`, else `AWS_DEFAULT_REGION` (non-empty).
fn sdk_region(lookup: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| lookup(name).filter(|v| !v.is_empty());
    set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"))
}

/// The AWS clients' configuration even when a setting is bad (with default timeouts): what
/// reporting a bad configuration, or a helper's call, still needs.
pub fn aws_lenient(env: &Environment) -> AwsConfig {
    let lookup = |key: &str| env.get(key).map(str::to_string);
    aws_config(&lookup, timeouts(&lookup).unwrap_or_default())
}

/// What a job with a role of its own does not inherit: the runner's credentials and its
/// settings, but those jobs read themselves ([`FOR_JOBS`]); `names` adds the `OTEL_*` ones.
fn job_role_withheld<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let settings = ALL
        .iter()
        .map(|s| s.name)
        .filter(|name| !FOR_JOBS.contains(name));
    crate::engine::withheld(names.map(str::to_string), settings)
}

/// The job role settings; the refresh margin must be shorter than a session.
fn job_roles(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<crate::credentials::JobRoleConfig, ConfigError> {
    let default_role = match lookup(JOB_ROLE_ARN.name).filter(|v| !v.trim().is_empty()) {
        None => None,
        Some(value) => Some(
            crate::job::role_arn(&value, JOB_ROLE_ARN.name).map_err(|_| ConfigError {
                key: JOB_ROLE_ARN.name.into(),
                value,
                expected: "an IAM role ARN such as arn:aws:iam::123456789012:role/deploy-dev"
                    .into(),
            })?,
        ),
    };
    let session = duration(lookup, &JOB_ROLE_SESSION_SECONDS)?.unwrap_or_default();
    let refresh_margin = duration(lookup, &JOB_ROLE_REFRESH_SECONDS)?.unwrap_or_default();
    if refresh_margin >= session {
        return Err(ConfigError {
            key: JOB_ROLE_REFRESH_SECONDS.name.into(),
            value: refresh_margin.as_secs().to_string(),
            expected: format!(
                "fewer seconds than {} ({})",
                JOB_ROLE_SESSION_SECONDS.name,
                session.as_secs()
            ),
        });
    }
    Ok(crate::credentials::JobRoleConfig {
        default_role,
        session,
        refresh_margin,
        withheld: job_role_withheld(std::iter::empty()),
        region_set: ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .into_iter()
            .filter(|name| lookup(name).is_some())
            .map(str::to_string)
            .collect(),
    })
}

/// The tracing filter: `RUST_LOG` as it is, else [`LOG_LEVEL`] mapped to a level.
fn log_filter(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    if let Some(rust_log) = lookup("RUST_LOG").filter(|v| !v.is_empty()) {
        return Ok(Some(rust_log));
    }
    let Some(level) = lookup(LOG_LEVEL.name).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let mapped = match level.trim().to_ascii_uppercase().as_str() {
        "ALL" | "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" => "error",
        "OFF" => "off",
        _ => {
            return Err(ConfigError {
                key: LOG_LEVEL.name.into(),
                value: level,
                expected: "one of DEBUG, INFO, WARN, ERROR, OFF, ALL".into(),
            });
        }
    };
    Ok(Some(mapped.to_string()))
}

/// The README's settings table, rendered from [`ALL`].
pub fn markdown_table() -> String {
    let mut table = String::from("| Variable | Default | Accepts | Meaning |\n|---|---|---|---|\n");
    for s in ALL {
        let (default, accepts) = match s.kind {
            Kind::Number {
                default,
                min,
                max,
                unit,
            } => (
                default.map_or("none".to_string(), |d| d.to_string()),
                if max == u64::MAX {
                    format!("{min} or more {unit}")
                } else {
                    format!("{min} to {max} {unit}")
                },
            ),
            Kind::Text { default } => (default.to_string(), "text".to_string()),
        };
        table.push_str(&format!(
            "| `{}` | {default} | {accepts} | {} |\n",
            s.name, s.meaning
        ));
    }
    table
}

#[cfg(test)]
mod tests;
