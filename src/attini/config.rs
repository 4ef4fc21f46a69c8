//! Attini mode settings: the `ATTINI_*` variables the dispatcher sets on the container
//! (CONTRACT.md 3.3) with the Attini Runner's defaults, and the version check (4.2).

use std::time::Duration;

use super::item::RunnerItem;
use crate::config::{self, ConfigError};
use crate::ec2::Hook;

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
    /// `ATTINI_RUNNER_IDLE_TTL`, default 3600 s.
    pub idle_ttl: Duration,
    /// `ATTINI_MAX_CONCURRENT_JOBS`, default 5 (1 to 100).
    pub max_jobs: usize,
    /// `ATTINI_STARTUP_COMMANDS_TIMEOUT`, default 3600 s.
    pub startup_timeout: Duration,
    /// `ATTINI_EC2_INSTANCE_ID` (EC2 mode only).
    pub ec2_instance_id: Option<String>,
    /// `ATTINI_DRAIN_GRACE`, default 90 s.
    pub drain_grace: Duration,
}

impl AttiniConfig {
    /// Reads the settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |key: &str| {
            lookup(key)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ConfigError {
                    key: key.into(),
                    value: String::new(),
                    expected: "a value (the Attini dispatcher always sets it)".into(),
                })
        };
        Ok(AttiniConfig {
            queue_url: required("ATTINI_QUEUE_URL")?,
            deploy_data_table: required("ATTINI_DEPLOY_DATA_TABLE")?,
            resource_state_table: required("ATTINI_RESOURCE_STATE_TABLE")?,
            resource_name: required("ATTINI_RUNNER_RESOURCE_NAME")?,
            config_hash: lookup("ATTINI_CONFIGURATION_HASH")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            region: lookup("ATTINI_AWS_REGION").filter(|v| !v.is_empty()),
            idle_ttl: config::seconds(&lookup, "ATTINI_RUNNER_IDLE_TTL", 3600)?,
            max_jobs: config::number(&lookup, "ATTINI_MAX_CONCURRENT_JOBS", 5, 1, 100)? as usize,
            startup_timeout: config::seconds(&lookup, "ATTINI_STARTUP_COMMANDS_TIMEOUT", 3600)?,
            ec2_instance_id: lookup("ATTINI_EC2_INSTANCE_ID").filter(|v| !v.is_empty()),
            drain_grace: crate::dispatch::Limits::drain_grace(&lookup)?,
        })
    }

    /// The runner's resource-state item.
    pub fn runner_item(&self, clients: &crate::aws::Clients) -> RunnerItem {
        RunnerItem {
            dynamodb: clients.dynamodb.clone(),
            table: self.resource_state_table.clone(),
            name: self.resource_name.clone(),
        }
    }

    /// The EC2 hook, in EC2 mode.
    pub fn ec2_hook(&self) -> Option<Hook> {
        let instance_id = self.ec2_instance_id.clone()?;
        let region = self
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into());
        Some(Hook {
            instance_id,
            region,
        })
    }
}

/// Fails when `current` is older than `required` (major.minor.patch; anything after the first
/// `-` is ignored), with the Attini Runner's message.
pub fn check_version(current: &str, required: &str) -> Result<(), String> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.trim().split('-').next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((
            parts.next()??,
            parts.next().unwrap_or(Some(0))?,
            parts.next().unwrap_or(Some(0))?,
        ))
    };
    let (Some(have), Some(want)) = (parse(current), parse(required)) else {
        return Err(format!(
            "The required runner version {required:?} is not a version like 2.0.2 (current version: {current})"
        ));
    };
    if have < want {
        return Err(format!(
            "The current runner version is older then the required version. Required version: {required}, current version: {current}"
        ));
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
            e,
            "The current runner version is older then the required version. Required version: 3.0.0, current version: 2.1.0"
        );
        assert!(check_version("2.1.0", "latest").is_err());
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
        let c = AttiniConfig::from_lookup(lookup).unwrap();
        assert_eq!(c.config_hash, 0);
        assert_eq!(c.idle_ttl, Duration::from_secs(3600));
        assert_eq!(c.max_jobs, 5);
        assert_eq!(c.startup_timeout, Duration::from_secs(3600));
        let e = AttiniConfig::from_lookup(|k| lookup(k).filter(|_| k != "ATTINI_QUEUE_URL"))
            .unwrap_err();
        assert_eq!(e.key, "ATTINI_QUEUE_URL");
    }
}
