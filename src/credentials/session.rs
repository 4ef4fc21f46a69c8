//! One job's role session: assumed once before the job starts, then assumed again whenever
//! the credentials handed out would expire within the refresh margin, so that a job longer
//! than one session (a role-chained session lasts at most an hour) keeps working.
//! Cancellation: dropping a call to [`RoleSession::credentials`] leaves the last credentials
//! in place; the next call assumes again if they are due.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::types::{Credentials, Tag};

use crate::aws::error::classify;
use crate::metrics::Figures;

/// One set of temporary credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// `AccessKeyId`.
    pub access_key_id: String,
    /// `SecretAccessKey`.
    pub secret_access_key: String,
    /// `Token` (session token).
    pub session_token: String,
    /// When they expire.
    pub expiration: SystemTime,
}

impl std::fmt::Debug for Issued {
    // Never the secret parts, even in a debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// What to ask STS for.
#[derive(Debug, Clone)]
pub struct AssumeRequest {
    /// The role's ARN.
    pub role: String,
    /// The session name (see [`super::names::session_name`]).
    pub session_name: String,
    /// Session tags (see [`super::names::session_tags`]).
    pub tags: Vec<(String, String)>,
    /// The session's length.
    pub duration: Duration,
}

/// The role could not be assumed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "could not assume the job's role {role}: {reason}. The runner's role needs sts:AssumeRole and sts:TagSession on it, and the role's trust policy must allow the runner's role"
)]
pub struct AssumeError {
    /// The role's ARN.
    pub role: String,
    /// STS's answer, or the transport error.
    pub reason: String,
}

/// A job's role session; see the module documentation.
pub struct RoleSession {
    sts: aws_sdk_sts::Client,
    figures: Arc<Figures>,
    request: AssumeRequest,
    refresh_margin: Duration,
    current: tokio::sync::Mutex<Issued>,
}

impl RoleSession {
    /// Assumes the role a first time. `refresh_margin`: credentials expiring within it are
    /// replaced before they are handed out.
    pub async fn start(
        sts: aws_sdk_sts::Client,
        figures: Arc<Figures>,
        request: AssumeRequest,
        refresh_margin: Duration,
    ) -> Result<Self, AssumeError> {
        let first = assume(&sts, &figures, &request).await?;
        Ok(RoleSession {
            sts,
            figures,
            request,
            refresh_margin,
            current: tokio::sync::Mutex::new(first),
        })
    }

    /// The role's ARN.
    pub fn role(&self) -> &str {
        &self.request.role
    }

    /// Credentials valid for at least the refresh margin, assuming the role again when the
    /// last ones are due.
    pub async fn credentials(&self) -> Result<Issued, AssumeError> {
        let mut current = self.current.lock().await;
        let due = SystemTime::now() + self.refresh_margin;
        if current.expiration <= due {
            *current = assume(&self.sts, &self.figures, &self.request).await?;
            tracing::info!(
                role = self.request.role,
                session = self.request.session_name,
                "assumed the job's role again: its credentials were due to expire"
            );
        }
        Ok(current.clone())
    }
}

async fn assume(
    sts: &aws_sdk_sts::Client,
    figures: &Figures,
    request: &AssumeRequest,
) -> Result<Issued, AssumeError> {
    let error = |reason: String| AssumeError {
        role: request.role.clone(),
        reason,
    };
    let mut tags = Vec::new();
    for (key, value) in &request.tags {
        let tag = Tag::builder().key(key).value(value).build();
        tags.push(tag.map_err(|e| error(e.to_string()))?);
    }
    let answer = sts
        .assume_role()
        .role_arn(&request.role)
        .role_session_name(&request.session_name)
        .duration_seconds(request.duration.as_secs().min(i32::MAX as u64) as i32)
        .set_tags((!tags.is_empty()).then_some(tags))
        .send()
        .await
        .map_err(|e| error(classify(figures, "AssumeRole", e).message))?;
    let credentials: Credentials = answer
        .credentials
        .ok_or_else(|| error("STS answered without credentials".into()))?;
    let expiration = SystemTime::try_from(credentials.expiration)
        .map_err(|e| error(format!("STS answered an expiry that is not a time: {e}")))?;
    Ok(Issued {
        access_key_id: credentials.access_key_id,
        secret_access_key: credentials.secret_access_key,
        session_token: credentials.session_token,
        expiration,
    })
}
