//! Attini mode settings: the `ATTINI_*` variables the dispatcher sets on the container
//! (CONTRACT.md 3.3), taken from the parsed [`Settings`] with the Attini Runner's defaults, and
//! the version check (4.2). Pure; nothing to cancel.

use std::time::Duration;

use crate::aws::Clients;
use crate::aws::dynamodb::RunnerItem;
use crate::aws::ec2::Hook;
use crate::config::{self, ConfigError, Settings};
use crate::worker::WorkerConfig;

/// Attini mode settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttiniConfig {
    /// `ATTINI_QUEUE_URL`.
    pub queue_url: String,
    /// `ATTINI_DEPLOY_DATA_TABLE`.
    pub deploy_data_table: String,
    /// `ATTINI_RESOURCE_STATE_TABLE`.
    pub resource_state_table: String,
    /// `ATTINI_RUNNER_RESOURCE_NAME`, the item's `name`.
    pub resource_name: String,
    /// `ATTINI_CONFIGURATION_HASH`, opaque; 0 when it does not parse (as the Attini Runner).
    pub config_hash: i64,
    /// `ATTINI_AWS_REGION`.
    pub region: Option<String>,
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`), for the EC2 hook when the former is unset.
    pub sdk_region: Option<String>,
    /// The loop: `ATTINI_MAX_CONCURRENT_JOBS` (5), `ATTINI_RUNNER_IDLE_TTL` (3600 s),
    /// `ATTINI_DRAIN_GRACE` (90 s).
    pub worker: WorkerConfig,
    /// `ATTINI_STARTUP_COMMANDS_TIMEOUT`, default 3600 s.
    pub startup_timeout: Duration,
    /// `ATTINI_EC2_INSTANCE_ID` (EC2 mode only).
    pub ec2_instance_id: Option<String>,
    /// Job roles (`ATTINI_JOB_ROLE_ARN`, ...).
    pub job_roles: crate::credentials::JobRoleConfig,
    /// `ATTINI_REFUSE_LITERAL_SECRETS`.
    pub refuse_literal_secrets: bool,
}

impl AttiniConfig {
    /// The Attini settings; the dispatcher always sets the required ones.
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let hint = "a value (the Attini dispatcher always sets it)";
        let a = &settings.attini;
        let mut worker = settings.worker;
        worker.idle_ttl = worker.idle_ttl.or(Some(config::ATTINI_IDLE_TTL_DEFAULT));
        Ok(AttiniConfig {
            queue_url: config::required(&settings.queue_url, &config::QUEUE_URL, hint)?,
            deploy_data_table: config::required(
                &a.deploy_data_table,
                &config::DEPLOY_DATA_TABLE,
                hint,
            )?,
            resource_state_table: config::required(
                &a.resource_state_table,
                &config::RESOURCE_STATE_TABLE,
                hint,
            )?,
            resource_name: config::required(&a.resource_name, &config::RUNNER_RESOURCE_NAME, hint)?,
            config_hash: a.config_hash,
            region: settings.region.clone(),
            sdk_region: settings.sdk_region.clone(),
            worker,
            startup_timeout: a.startup_timeout,
            ec2_instance_id: a.ec2_instance_id.clone(),
            job_roles: settings.job_roles.clone(),
            refuse_literal_secrets: settings.refuse_literal_secrets,
        })
    }

    /// The runner's resource-state item.
    pub fn runner_item(&self, clients: &Clients) -> RunnerItem {
        RunnerItem {
            dynamodb: clients.dynamodb.built(),
            table: self.resource_state_table.clone(),
            name: self.resource_name.clone(),
            figures: clients.figures.clone(),
        }
    }

    /// The EC2 hook, in EC2 mode.
    pub fn ec2_hook(&self) -> Option<Hook> {
        let instance_id = self.ec2_instance_id.clone()?;
        let region = self
            .region
            .clone()
            .or_else(|| self.sdk_region.clone())
            .unwrap_or_else(|| "us-east-1".into());
        Some(Hook {
            instance_id,
            region,
        })
    }
}

/// The required runner version is not met, or is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// The dispatcher asked for something that is not a version.
    #[error(
        "The required runner version {required:?} is not a version like 2.0.2 (current version: {current})"
    )]
    NotAVersion {
        /// What was asked for.
        required: String,
        /// This runner's version.
        current: String,
    },
    /// This runner is older than required (the Attini Runner's words, typo included).
    #[error(
        "The current runner version is older then the required version. Required version: {required}, current version: {current}"
    )]
    TooOld {
        /// What was asked for.
        required: String,
        /// This runner's version.
        current: String,
    },
}

/// Fails when `current` is older than `required` (major.minor.patch; anything after the first
/// `-` is ignored), with the Attini Runner's message.
pub fn check_version(current: &str, required: &str) -> Result<(), VersionError> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.trim().split('-').next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((
            parts.next()??,
            parts.next().unwrap_or(Some(0))?,
            parts.next().unwrap_or(Some(0))?,
        ))
    };
    let versions = || (required.to_string(), current.to_string());
    let (Some(have), Some(want)) = (parse(current), parse(required)) else {
        let (required, current) = versions();
        return Err(VersionError::NotAVersion { required, current });
    };
    if have < want {
        let (required, current) = versions();
        return Err(VersionError::TooOld { required, current });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically_ignoring_suffixes() {
        assert!(check_version("2.1.0", "2.0.2").is_ok());
        assert!(check_version("2.0.2", "2.0.2-SNAPSHOT").is_ok());
        assert!(check_version("2.0.10", "2.0.9").is_ok());
        let e = check_version("2.1.0", "3.0.0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "The current runner version is older then the required version. Required version: 3.0.0, current version: 2.1.0"
        );
        assert!(check_version("2.1.0", "latest").is_err());
    }

    /// The EC2 hook exists with an instance id only, in `ATTINI_AWS_REGION`, else the SDK's
    /// region, else us-east-1.
    #[test]
    fn the_ec2_hook_takes_the_attini_region_then_the_sdks_then_us_east_1() {
        let hook = |vars: &[(&str, &str)]| {
            let mut all = vec![
                ("ATTINI_QUEUE_URL", "q"),
                ("ATTINI_DEPLOY_DATA_TABLE", "d"),
                ("ATTINI_RESOURCE_STATE_TABLE", "r"),
                ("ATTINI_RUNNER_RESOURCE_NAME", "n"),
            ];
            all.extend_from_slice(vars);
            let lookup = |k: &str| {
                all.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            let settings = Settings::from_lookup(lookup).unwrap();
            AttiniConfig::from_settings(&settings).unwrap().ec2_hook()
        };
        let id = ("ATTINI_EC2_INSTANCE_ID", "i-0abc");
        assert!(hook(&[("AWS_REGION", "eu-west-1")]).is_none());
        let region = |vars: &[(&str, &str)]| {
            let hook = hook(vars).expect("an instance id");
            assert_eq!(hook.instance_id, "i-0abc");
            hook.region
        };
        assert_eq!(region(&[id]), "us-east-1");
        assert_eq!(region(&[id, ("AWS_REGION", "eu-west-1")]), "eu-west-1");
        assert_eq!(
            region(&[
                id,
                ("AWS_REGION", "eu-west-1"),
                ("ATTINI_AWS_REGION", "eu-north-1")
            ]),
            "eu-north-1"
        );
    }

    #[test]
    fn defaults_and_required_values() {
        let vars = [
            ("ATTINI_QUEUE_URL", "q"),
            ("ATTINI_DEPLOY_DATA_TABLE", "d"),
            ("ATTINI_RESOURCE_STATE_TABLE", "r"),
            ("ATTINI_RUNNER_RESOURCE_NAME", "n"),
            ("ATTINI_CONFIGURATION_HASH", "not-a-number"),
        ];
        let lookup = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let settings = Settings::from_lookup(lookup).unwrap();
        let c = AttiniConfig::from_settings(&settings).unwrap();
        assert_eq!(c.config_hash, 0);
        assert_eq!(c.worker.idle_ttl, Some(Duration::from_secs(3600)));
        assert_eq!(c.worker.max_jobs, 5);
        assert_eq!(c.startup_timeout, Duration::from_secs(3600));
        let without_queue =
            Settings::from_lookup(|k| lookup(k).filter(|_| k != "ATTINI_QUEUE_URL")).unwrap();
        let e = AttiniConfig::from_settings(&without_queue).unwrap_err();
        assert_eq!(e.key, "ATTINI_QUEUE_URL");
    }
}
