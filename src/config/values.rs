//! The parsers of one setting's value: a number in its range (or seconds), a yes/no flag, the
//! ops server's address, an S3 object, a required value. Each error names the variable, the
//! value and what is accepted ([`ConfigError`]). Pure; nothing to cancel.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, DEFAULT_OPS_ADDR, Kind, OPS_ADDR, Setting, TOOL_CACHE_SEED};

/// A yes/no setting: `true`/`false` (also `1`/`0`, `yes`/`no`); false when unset.
pub(super) fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    setting: &Setting,
) -> Result<bool, ConfigError> {
    let Some(raw) = lookup(setting.name).filter(|v| !v.trim().is_empty()) else {
        return Ok(false);
    };
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError {
            key: setting.name.into(),
            value: raw,
            expected: "`true` or `false`".into(),
        }),
    }
}

/// The ops server's address: [`DEFAULT_OPS_ADDR`] when unset, `None` for `off`.
pub fn ops_addr(value: Option<String>) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(value) = value else {
        return Ok(Some(DEFAULT_OPS_ADDR));
    };
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.trim().parse().map(Some).map_err(|_| ConfigError {
        key: OPS_ADDR.name.into(),
        value,
        expected: "an IP address and port such as 127.0.0.1:9464 or 0.0.0.0:9464, or `off`".into(),
    })
}

/// `s3://BUCKET/KEY` as (bucket, key), for [`TOOL_CACHE_SEED`].
pub fn s3_object(value: String) -> Result<(String, String), ConfigError> {
    let parts = value
        .trim()
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'));
    match parts {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(ConfigError {
            key: TOOL_CACHE_SEED.name.into(),
            value,
            expected: "an S3 object as s3://BUCKET/KEY, such as s3://my-bucket/caches/npm.zip"
                .into(),
        }),
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

pub(super) fn duration(
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
