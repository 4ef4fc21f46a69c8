//! Runner settings from the environment (CONTRACT.md 3.3 names and defaults, plus our own
//! `ATTINI_*` additions), validated once at start. A bad value is an error naming the
//! variable, the value and what is accepted. Pure; nothing to cancel.

use std::path::PathBuf;
use std::time::Duration;

use crate::distribution::Limits;

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

/// What the job engine needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Where job directories and the distribution cache live; a fresh subdirectory is made per
    /// runner process. `ATTINI_WORK_DIR`, default `$TMPDIR/attini-runner`.
    pub work_dir: PathBuf,
    /// Default job timeout. `ATTINI_JOB_TIMEOUT` in seconds, default 3600.
    pub job_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a job is ended. `ATTINI_KILL_GRACE` in seconds,
    /// default 10.
    pub kill_grace: Duration,
    /// Limits for one distribution. `ATTINI_DISTRIBUTION_MAX_BYTES`, default 4 GiB.
    pub limits: Limits,
    /// Bytes of extracted distributions kept in the cache. `ATTINI_DISTRIBUTION_CACHE_BYTES`,
    /// default 2 GiB.
    pub cache_bytes: u64,
    /// The program jobs call as `$ATTINI_RUNNER_EXEC` when the environment does not already
    /// say: this binary.
    pub runner_exec: PathBuf,
}

impl EngineConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let work_dir = lookup("ATTINI_WORK_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("attini-runner"));
        let limits = Limits {
            max_bytes: number(
                &lookup,
                "ATTINI_DISTRIBUTION_MAX_BYTES",
                Limits::default().max_bytes,
                1,
                u64::MAX,
            )?,
            ..Limits::default()
        };
        Ok(EngineConfig {
            work_dir,
            job_timeout: seconds(&lookup, "ATTINI_JOB_TIMEOUT", 3600)?,
            kill_grace: Duration::from_secs(number(&lookup, "ATTINI_KILL_GRACE", 10, 0, 3600)?),
            limits,
            cache_bytes: number(
                &lookup,
                "ATTINI_DISTRIBUTION_CACHE_BYTES",
                2 << 30,
                0,
                u64::MAX,
            )?,
            runner_exec: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("attini-runner")),
        })
    }
}

/// A positive number of seconds (at most a year) from `key`, or `default`.
pub fn seconds(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: u64,
) -> Result<Duration, ConfigError> {
    number(lookup, key, default, 1, 31_536_000).map(Duration::from_secs)
}

/// An integer in `min..=max` from `key`, or `default` when unset or empty.
pub fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = lookup(key).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            key: key.to_string(),
            value: raw,
            expected: if max == u64::MAX {
                format!("a whole number of at least {min}")
            } else {
                format!("a whole number from {min} to {max}")
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<EngineConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EngineConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_attini_runner() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.job_timeout, Duration::from_secs(3600));
        assert_eq!(c.kill_grace, Duration::from_secs(10));
    }

    #[test]
    fn bad_values_name_the_key_and_value() {
        let e = cfg(&[("ATTINI_JOB_TIMEOUT", "soon")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ATTINI_JOB_TIMEOUT=\"soon\" is not valid: a whole number from 1 to 31536000"
        );
        assert!(cfg(&[("ATTINI_JOB_TIMEOUT", "0")]).is_err());
        assert_eq!(
            cfg(&[("ATTINI_KILL_GRACE", " 3 ")]).unwrap().kill_grace,
            Duration::from_secs(3)
        );
    }
}
