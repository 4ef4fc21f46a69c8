//! Every setting of the runner, parsed once at start from an injected lookup (the process
//! environment, or a map in tests). Each setting's name, default, accepted range and meaning
//! live in one [`Setting`] below; the parsers read them from there, and the README's settings
//! table is rendered from them ([`markdown_table`], kept in sync by a test). A bad value is a
//! [`ConfigError`] naming the variable, the value and what is accepted (exit code 64).
//! Command-line flags override the environment after parsing. Pure; nothing to cancel.

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::EngineConfig;
use crate::engine::distribution::ExtractLimits;
use crate::worker::WorkerConfig;

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

/// One setting: its variable, what it accepts and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable.
    pub name: &'static str,
    /// What it accepts and its default.
    pub kind: Kind,
    /// One sentence for the README.
    pub meaning: &'static str,
}

/// What a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in `min..=max` (`u64::MAX`: no upper bound) of `unit`; `default` when
    /// unset or empty (`None`: off unless set).
    Number {
        /// Used when unset.
        default: Option<u64>,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
        /// What the number counts, for the README (`seconds`, `bytes`, `jobs`).
        unit: &'static str,
    },
    /// Free text; `default` says what applies when unset, for the README.
    Text {
        /// What applies when unset.
        default: &'static str,
    },
}

/// Longest timeout or TTL accepted: a year, in seconds.
pub const MAX_SECONDS: u64 = 31_536_000;

const fn seconds(default: Option<u64>, min: u64, max: u64) -> Kind {
    Kind::Number {
        default,
        min,
        max,
        unit: "seconds",
    }
}

const fn text(default: &'static str) -> Kind {
    Kind::Text { default }
}

/// `ATTINI_JOB_TIMEOUT`.
pub const JOB_TIMEOUT: Setting = Setting {
    name: "ATTINI_JOB_TIMEOUT",
    kind: seconds(Some(3600), 1, MAX_SECONDS),
    meaning: "Default job timeout (a job's `timeoutSeconds` wins).",
};
/// `ATTINI_KILL_GRACE`.
pub const KILL_GRACE: Setting = Setting {
    name: "ATTINI_KILL_GRACE",
    kind: seconds(Some(10), 0, 3600),
    meaning: "Time between SIGTERM and SIGKILL when a job is ended.",
};
/// `ATTINI_WORK_DIR`.
pub const WORK_DIR: Setting = Setting {
    name: "ATTINI_WORK_DIR",
    kind: text("`$TMPDIR/attini-runner`"),
    meaning: "Where job directories and the distribution cache live (a fresh `run-<id>` folder per process, removed at exit).",
};
/// `ATTINI_DISTRIBUTION_MAX_BYTES`.
pub const DISTRIBUTION_MAX_BYTES: Setting = Setting {
    name: "ATTINI_DISTRIBUTION_MAX_BYTES",
    kind: Kind::Number {
        default: Some(4 << 30),
        min: 1,
        max: u64::MAX,
        unit: "bytes",
    },
    meaning: "Most content one distribution may unpack to (and, plus a margin, download).",
};
/// `ATTINI_DISTRIBUTION_CACHE_BYTES`.
pub const DISTRIBUTION_CACHE_BYTES: Setting = Setting {
    name: "ATTINI_DISTRIBUTION_CACHE_BYTES",
    kind: Kind::Number {
        default: Some(2 << 30),
        min: 0,
        max: u64::MAX,
        unit: "bytes",
    },
    meaning: "Extracted distributions kept for later jobs (least recently used go first).",
};
/// `ATTINI_MAX_CONCURRENT_JOBS`.
pub const MAX_CONCURRENT_JOBS: Setting = Setting {
    name: "ATTINI_MAX_CONCURRENT_JOBS",
    kind: Kind::Number {
        default: Some(5),
        min: 1,
        max: 100,
        unit: "jobs",
    },
    meaning: "AWS modes: jobs run at once (`serve --max-jobs` wins).",
};
/// `ATTINI_RUNNER_IDLE_TTL`.
pub const IDLE_TTL: Setting = Setting {
    name: "ATTINI_RUNNER_IDLE_TTL",
    kind: seconds(None, 1, MAX_SECONDS),
    meaning: "AWS modes: exit after this long without jobs, counted from the end of the last one. Unset: 3600 in Attini mode, never in `serve` (`--idle-ttl` wins).",
};
/// The idle TTL of Attini mode when [`IDLE_TTL`] is unset (CONTRACT.md 3.3).
pub const ATTINI_IDLE_TTL_DEFAULT: Duration = Duration::from_secs(3600);
/// `ATTINI_DRAIN_GRACE`.
pub const DRAIN_GRACE: Setting = Setting {
    name: "ATTINI_DRAIN_GRACE",
    kind: seconds(Some(90), 0, 3600),
    meaning: "AWS modes: time running jobs get to finish after SIGTERM/SIGINT (below Fargate's 120 s stop timeout).",
};
/// `ATTINI_STARTUP_COMMANDS_TIMEOUT`.
pub const STARTUP_COMMANDS_TIMEOUT: Setting = Setting {
    name: "ATTINI_STARTUP_COMMANDS_TIMEOUT",
    kind: seconds(Some(3600), 1, MAX_SECONDS),
    meaning: "Attini mode: timeout of the runner's startup commands.",
};
/// `ATTINI_QUEUE_URL`.
pub const QUEUE_URL: Setting = Setting {
    name: "ATTINI_QUEUE_URL",
    kind: text("required in AWS modes"),
    meaning: "The job queue (`serve --queue-url` wins).",
};
/// `ATTINI_DEPLOY_DATA_TABLE`.
pub const DEPLOY_DATA_TABLE: Setting = Setting {
    name: "ATTINI_DEPLOY_DATA_TABLE",
    kind: text("required in Attini mode"),
    meaning: "Attini mode: the deploy-data table (current executions).",
};
/// `ATTINI_RESOURCE_STATE_TABLE`.
pub const RESOURCE_STATE_TABLE: Setting = Setting {
    name: "ATTINI_RESOURCE_STATE_TABLE",
    kind: text("required in Attini mode"),
    meaning: "Attini mode: the resource-state table (the runner's item; CDK stacks).",
};
/// `ATTINI_RUNNER_RESOURCE_NAME`.
pub const RUNNER_RESOURCE_NAME: Setting = Setting {
    name: "ATTINI_RUNNER_RESOURCE_NAME",
    kind: text("required in Attini mode"),
    meaning: "Attini mode: the `name` of the runner's resource-state item.",
};
/// `ATTINI_CONFIGURATION_HASH`.
pub const CONFIGURATION_HASH: Setting = Setting {
    name: "ATTINI_CONFIGURATION_HASH",
    kind: text("0 (also when not a number)"),
    meaning: "Attini mode: jobs with another `taskConfigHashCode` are left for the runner started for them.",
};
/// `ATTINI_AWS_REGION`.
pub const AWS_REGION: Setting = Setting {
    name: "ATTINI_AWS_REGION",
    kind: text("none"),
    meaning: "The region when `AWS_REGION` is not set.",
};
/// `ATTINI_EC2_INSTANCE_ID`.
pub const EC2_INSTANCE_ID: Setting = Setting {
    name: "ATTINI_EC2_INSTANCE_ID",
    kind: text("none"),
    meaning: "Attini mode on EC2: the host terminated when the runner exits.",
};
/// `ATTINI_LOG_LEVEL`.
pub const LOG_LEVEL: Setting = Setting {
    name: "ATTINI_LOG_LEVEL",
    kind: text("`INFO`; `WARN` in local mode"),
    meaning: "`DEBUG`, `INFO`, `WARN`, `ERROR`, `OFF` or `ALL`; `RUST_LOG` (a tracing filter) wins when set.",
};

/// Every setting, in the README's order.
pub const ALL: &[Setting] = &[
    JOB_TIMEOUT,
    KILL_GRACE,
    WORK_DIR,
    DISTRIBUTION_MAX_BYTES,
    DISTRIBUTION_CACHE_BYTES,
    MAX_CONCURRENT_JOBS,
    IDLE_TTL,
    DRAIN_GRACE,
    STARTUP_COMMANDS_TIMEOUT,
    QUEUE_URL,
    DEPLOY_DATA_TABLE,
    RESOURCE_STATE_TABLE,
    RUNNER_RESOURCE_NAME,
    CONFIGURATION_HASH,
    AWS_REGION,
    EC2_INSTANCE_ID,
    LOG_LEVEL,
];

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
    /// Attini mode only.
    pub attini: AttiniSettings,
    /// The tracing filter from `RUST_LOG` or [`LOG_LEVEL`]; `None`: the mode's default.
    pub log_filter: Option<String>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
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
            limits: ExtractLimits {
                max_bytes: number(&lookup, &DISTRIBUTION_MAX_BYTES)?.unwrap_or_default(),
                ..ExtractLimits::default()
            },
            cache_bytes: number(&lookup, &DISTRIBUTION_CACHE_BYTES)?.unwrap_or_default(),
            runner_exec: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("attini-runner")),
        };
        let worker = WorkerConfig {
            max_jobs: number(&lookup, &MAX_CONCURRENT_JOBS)?.unwrap_or(5) as usize,
            idle_ttl: duration(&lookup, &IDLE_TTL)?,
            drain_grace: duration(&lookup, &DRAIN_GRACE)?.unwrap_or_default(),
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
            attini,
            log_filter: log_filter(&lookup)?,
        })
    }
}

/// A value that must be present: `Err` names the setting and says where it comes from.
pub fn required(
    value: &Option<String>,
    setting: &Setting,
    hint: &str,
) -> Result<String, ConfigError> {
    value.clone().ok_or_else(|| ConfigError {
        key: setting.name.into(),
        value: String::new(),
        expected: hint.into(),
    })
}

/// The number of a [`Kind::Number`] setting, its default when unset or empty.
pub fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    setting: &Setting,
) -> Result<Option<u64>, ConfigError> {
    let Kind::Number {
        default, min, max, ..
    } = setting.kind
    else {
        return Ok(None);
    };
    let Some(raw) = lookup(setting.name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError {
            key: setting.name.to_string(),
            value: raw,
            expected: range_text(min, max),
        }),
    }
}

fn duration(
    lookup: &impl Fn(&str) -> Option<String>,
    setting: &Setting,
) -> Result<Option<Duration>, ConfigError> {
    Ok(number(lookup, setting)?.map(Duration::from_secs))
}

fn range_text(min: u64, max: u64) -> String {
    if max == u64::MAX {
        format!("a whole number of at least {min}")
    } else {
        format!("a whole number from {min} to {max}")
    }
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
