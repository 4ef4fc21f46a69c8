//! The ECS container metadata endpoint v4 (`ECS_CONTAINER_METADATA_URI_V4`): this task's ARN,
//! whether ECS is stopping it, and the awslogs location for the CloudWatch link in failure
//! causes (CONTRACT.md 5.6.8). Each read is one short HTTP GET with a 2 s timeout; dropping
//! it cancels the request.

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

/// The variable ECS sets to the container's metadata URL.
pub const METADATA_VAR: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// What the runner reads from the container metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMetadata {
    /// `Labels["com.amazonaws.ecs.task-arn"]`.
    pub task_arn: Option<String>,
    /// `DesiredStatus` (`RUNNING`, `STOPPED`).
    pub desired_status: Option<String>,
    /// CloudWatch console link of this container's log stream, when it logs with awslogs.
    pub logs_url: Option<String>,
}

impl ContainerMetadata {
    /// True when ECS wants this task stopped.
    pub fn stopping(&self) -> bool {
        self.desired_status.as_deref() == Some("STOPPED")
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "Labels", default)]
    labels: std::collections::HashMap<String, String>,
    #[serde(rename = "DesiredStatus")]
    desired_status: Option<String>,
    #[serde(rename = "LogOptions", default)]
    log_options: std::collections::HashMap<String, String>,
}

/// Why the container metadata could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The endpoint did not answer, or answered an error status.
    #[error("cannot read the ECS container metadata at {url}: {detail}")]
    Unreachable {
        /// The endpoint.
        url: String,
        /// Why.
        detail: String,
    },
    /// The answer is not container metadata.
    #[error("the ECS container metadata at {url} is not what ECS serves: {detail}")]
    Unexpected {
        /// The endpoint.
        url: String,
        /// Why.
        detail: String,
    },
}

/// Reads the metadata endpoint.
#[derive(Debug, Clone)]
pub struct Metadata {
    url: String,
    http: reqwest::Client,
}

impl Metadata {
    /// The endpoint at `url` ([`METADATA_VAR`], from the settings), if set.
    pub fn from_url(url: Option<String>) -> Option<Self> {
        url.filter(|u| !u.is_empty()).map(Self::new)
    }

    /// The endpoint at `url`.
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Metadata { url, http }
    }

    /// Reads the container metadata.
    pub async fn read(&self) -> Result<ContainerMetadata, MetadataError> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| MetadataError::Unreachable {
                url: self.url.clone(),
                detail: e.to_string(),
            })?;
        let raw: Raw = response
            .json()
            .await
            .map_err(|e| MetadataError::Unexpected {
                url: self.url.clone(),
                detail: e.to_string(),
            })?;
        let logs_url = match (
            raw.log_options.get("awslogs-region"),
            raw.log_options.get("awslogs-group"),
            raw.log_options.get("awslogs-stream"),
        ) {
            (Some(region), Some(group), Some(stream)) => {
                Some(cloudwatch_url(region, group, stream))
            }
            _ => None,
        };
        Ok(ContainerMetadata {
            task_arn: raw.labels.get("com.amazonaws.ecs.task-arn").cloned(),
            desired_status: raw.desired_status,
            logs_url,
        })
    }
}

/// The CloudWatch console link of a log stream; the console wants group and stream encoded
/// twice.
pub fn cloudwatch_url(region: &str, group: &str, stream: &str) -> String {
    let twice = |s: &str| {
        let once = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        utf8_percent_encode(&once, NON_ALPHANUMERIC).to_string()
    };
    format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        twice(group),
        twice(stream)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn cloudwatch_links_encode_twice() {
        assert_eq!(
            super::cloudwatch_url("eu-west-1", "/attini/runner/default", "logs/c/abc"),
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/%252Fattini%252Frunner%252Fdefault/log-events/logs%252Fc%252Fabc"
        );
    }
}
