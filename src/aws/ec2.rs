//! The EC2 terminate-on-exit hook (CONTRACT.md 4.3): in EC2 mode (`ATTINI_EC2_INSTANCE_ID`
//! set) the runner terminates its host when it exits, unless the resource-state item says
//! `shutdownHookDisabled = true` (a configuration change keeps the host). A read error counts
//! as "enabled", as with the Attini Runner. The call is one SigV4-signed `TerminateInstances`
//! GET, with the instance as `InstanceId.1` (the documented list form of the EC2 query
//! API). Runs once, at exit; nothing to cancel.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;

use super::Clients;
use super::dynamodb::RunnerItem;

/// What the hook terminates.
#[derive(Debug, Clone)]
pub struct Hook {
    /// The instance to terminate.
    pub instance_id: String,
    /// Its region.
    pub region: String,
}

impl Hook {
    /// Terminates the instance unless the item disables the hook. Errors are logged.
    pub async fn run(&self, clients: &Clients, item: &RunnerItem) {
        if disabled(item).await {
            tracing::info!(
                instance = self.instance_id,
                "shutdownHookDisabled is true: keeping the EC2 host"
            );
            return;
        }
        match self.terminate(clients).await {
            Ok(()) => tracing::info!(instance = self.instance_id, "EC2 host terminated"),
            Err(e) => tracing::error!(
                instance = self.instance_id,
                error = %e,
                "could not terminate the EC2 host"
            ),
        }
    }

    async fn terminate(&self, clients: &Clients) -> Result<(), TerminateError> {
        let endpoint = clients
            .ec2_endpoint
            .clone()
            .unwrap_or_else(|| format!("https://ec2.{}.amazonaws.com", self.region));
        let url = format!(
            "{}/?Action=TerminateInstances&Version=2016-11-15&InstanceId.1={}",
            endpoint.trim_end_matches('/'),
            self.instance_id
        );
        let provider = clients
            .config
            .credentials_provider()
            .ok_or(TerminateError::NoCredentials)?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| TerminateError::Credentials(Box::new(e)))?;
        let identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ec2")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| TerminateError::Sign(Box::new(e)))?
            .into();
        let signable = SignableRequest::new(
            "GET",
            url.as_str(),
            std::iter::empty(),
            SignableBody::Bytes(&[]),
        )
        .map_err(|e| TerminateError::Sign(Box::new(e)))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| TerminateError::Sign(Box::new(e)))?
            .into_parts();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(TerminateError::Request)?;
        let mut request = http.get(&url);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(TerminateError::Request)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(TerminateError::Refused { status, body })
        }
    }
}

/// Why `TerminateInstances` failed: credentials, signing, the request or EC2's answer.
#[derive(Debug, thiserror::Error)]
pub enum TerminateError {
    /// The runner has no credentials provider.
    #[error("no AWS credentials are configured")]
    NoCredentials,
    /// The credentials could not be had.
    #[error("could not get AWS credentials: {0}")]
    Credentials(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request could not be signed.
    #[error("could not sign the request: {0}")]
    Sign(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request did not get through.
    #[error("the request failed: {0}")]
    Request(#[source] reqwest::Error),
    /// EC2 answered with an error.
    #[error("EC2 answered {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// EC2's answer.
        body: String,
    },
}

/// Whether the item says `shutdownHookDisabled = true`; a read error counts as "enabled".
async fn disabled(item: &RunnerItem) -> bool {
    match item.read(true).await {
        Ok(found) => found
            .get("shutdownHookDisabled")
            .and_then(|v| v.as_bool().ok().copied())
            .unwrap_or(false),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read shutdownHookDisabled; terminating the host anyway");
            false
        }
    }
}
