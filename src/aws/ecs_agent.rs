//! The ECS agent's task scale-in protection endpoint (`PUT $ECS_AGENT_URI/task-protection/v1/state`
//! with `{"ProtectionEnabled", "ExpiresInMinutes"}`), which ECS injects into every task's
//! containers. It answers `{"protection": {...}}` when it set the protection, `{"failure": {...}}`
//! when ECS would not (a task outside a service, say), and `{"error": {"Code", "Message"}}` for
//! an error of the ECS API (access denied, throttling). Each call is one HTTP request with a
//! 5 s timeout; dropping it cancels the request.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::worker::protection::{ProtectionAgent, ProtectionError};

/// The variable ECS sets to the agent's URL.
pub const AGENT_VAR: &str = "ECS_AGENT_URI";

/// One request's time limit.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// API error codes that another try will not cure.
const FINAL_CODES: &[&str] = &[
    "AccessDeniedException",
    "UnauthorizedOperation",
    "InvalidParameterException",
];

/// The agent of this task.
#[derive(Debug, Clone)]
pub struct EcsAgent {
    client: reqwest::Client,
    url: String,
}

impl EcsAgent {
    /// The agent at `agent_uri` (the value of [`AGENT_VAR`]).
    pub fn new(agent_uri: &str) -> EcsAgent {
        EcsAgent {
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .build()
                .unwrap_or_default(),
            url: format!(
                "{}/task-protection/v1/state",
                agent_uri.trim_end_matches('/')
            ),
        }
    }
}

#[derive(Deserialize, Default)]
struct Answer {
    protection: Option<serde_json::Value>,
    failure: Option<Failure>,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct Failure {
    #[serde(rename = "Reason", default)]
    reason: String,
    #[serde(rename = "Detail", default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

/// What one answer means.
fn judge(status: u16, body: &str) -> Result<(), ProtectionError> {
    let answer: Answer = serde_json::from_str(body).unwrap_or_default();
    if let Some(error) = answer.error {
        let text = format!("{}: {}", error.code, error.message);
        return Err(if FINAL_CODES.contains(&error.code.as_str()) {
            ProtectionError::Refused(text)
        } else {
            ProtectionError::Failed(text)
        });
    }
    if let Some(failure) = answer.failure {
        let detail = failure.detail.unwrap_or_default();
        return Err(ProtectionError::Refused(
            format!("{} {detail}", failure.reason).trim().to_string(),
        ));
    }
    match status {
        200..=299 if answer.protection.is_some() => Ok(()),
        401 | 403 => Err(ProtectionError::Refused(format!("HTTP {status}: {body}"))),
        _ => Err(ProtectionError::Failed(format!("HTTP {status}: {body}"))),
    }
}

impl ProtectionAgent for EcsAgent {
    async fn set(&self, enabled: bool, minutes: u32) -> Result<(), ProtectionError> {
        let mut body = json!({"ProtectionEnabled": enabled});
        if enabled {
            body["ExpiresInMinutes"] = json!(minutes);
        }
        let response = self
            .client
            .put(&self.url)
            .json(&body)
            .send()
            .await
            .map_err(|e| ProtectionError::Failed(format!("{}: {e}", self.url)))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        judge(status, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_their_kind() {
        let ok = r#"{"protection":{"ExpirationDate":"2026-11-30T12:00:00Z","ProtectionEnabled":true,"TaskArn":"arn"}}"#;
        assert_eq!(judge(200, ok), Ok(()));
        let denied = r#"{"error":{"Arn":"arn","Code":"AccessDeniedException","Message":"not authorized to perform ecs:UpdateTaskProtection"}}"#;
        assert!(
            matches!(judge(400, denied), Err(ProtectionError::Refused(m)) if m.contains("ecs:UpdateTaskProtection"))
        );
        let throttled = r#"{"error":{"Code":"ThrottlingException","Message":"Rate exceeded"}}"#;
        assert!(matches!(
            judge(400, throttled),
            Err(ProtectionError::Failed(_))
        ));
        let standalone =
            r#"{"failure":{"Arn":"arn","Reason":"TASK_NOT_VALID","Detail":"not in a service"}}"#;
        assert_eq!(
            judge(200, standalone),
            Err(ProtectionError::Refused(
                "TASK_NOT_VALID not in a service".into()
            ))
        );
        assert!(matches!(
            judge(503, "busy"),
            Err(ProtectionError::Failed(_))
        ));
        assert!(matches!(judge(403, ""), Err(ProtectionError::Refused(_))));
        assert!(matches!(judge(200, "{}"), Err(ProtectionError::Failed(_))));
    }
}
