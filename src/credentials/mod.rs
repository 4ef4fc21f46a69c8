//! A role per job: the job's commands run with temporary credentials of their own role
//! (native `role`, else `ATTINI_JOB_ROLE_ARN`), never with the runner's.
//!
//! Before a job with a role starts, [`JobRoles::grant`] assumes the role ([`session`]) with a
//! session name and tags that say which execution and step ([`names`]), and registers the
//! session with the loopback credential endpoint ([`server`]). The job is given the endpoint's
//! URL and a token of its own (`AWS_CONTAINER_CREDENTIALS_FULL_URI`,
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN`), which every AWS SDK and the AWS CLI read and refresh
//! from; the engine withholds the runner's own credentials and settings from it
//! ([`crate::engine::RunOptions::withheld`]). Dropping the [`Grant`] revokes the token.
//! Cancellation: dropping [`JobRoles::grant`] midway assumes nothing more and registers nothing.

pub mod names;
pub mod server;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use crate::job::JobSpec;
use server::{Endpoint, Registration};
use session::{AssumeRequest, RoleSession};

pub use session::AssumeError;

/// Settings of job roles; parsed by [`crate::config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRoleConfig {
    /// The role of jobs that name none (`ATTINI_JOB_ROLE_ARN`); `None`: such jobs run with
    /// the runner's credentials.
    pub default_role: Option<String>,
    /// Length of each role session (`ATTINI_JOB_ROLE_SESSION_SECONDS`, default 3600 s, 900 to
    /// 43200; a role-chained session is capped at 3600 by STS).
    pub session: Duration,
    /// Credentials expiring within this are replaced before they are handed out
    /// (`ATTINI_JOB_ROLE_REFRESH_SECONDS`, default 300 s).
    pub refresh_margin: Duration,
    /// The runner's variables a job with a role does not inherit (its credentials, its
    /// settings); from the settings.
    pub withheld: Vec<String>,
    /// Which of `AWS_REGION` and `AWS_DEFAULT_REGION` the runner's environment sets (and its
    /// jobs inherit); the others are given the runner's region.
    pub region_set: Vec<String>,
}

impl Default for JobRoleConfig {
    fn default() -> Self {
        JobRoleConfig {
            default_role: None,
            session: Duration::from_secs(3600),
            refresh_margin: Duration::from_secs(300),
            withheld: Vec::new(),
            region_set: Vec::new(),
        }
    }
}

/// The variables a job with a role is given, besides the endpoint's URL and its token: no
/// shared credentials or config file of the runner's user, and no instance metadata to fall
/// back on. The job's own `environment` may still set them.
const ROLE_JOB_VARIABLES: [(&str, &str); 3] = [
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// A job's credentials: what to add to its environment, and the registration that revokes
/// its token when dropped (keep it until the job's processes are gone).
pub struct Grant {
    /// Variables for the job (set before the job's own).
    pub env: Vec<(String, String)>,
    /// The job's endpoint token, to mask in its output.
    pub token: String,
    /// The runner's variables the job does not inherit.
    pub withheld: Vec<String>,
    /// Revokes the token when dropped.
    pub registration: Registration,
}

/// The role could not be given to the job.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// STS refused or could not be reached.
    #[error(transparent)]
    Assume(#[from] AssumeError),
    /// The loopback endpoint could not be bound.
    #[error(
        "could not open the job credential endpoint on 127.0.0.1 for the job's role {role}: {source}"
    )]
    Endpoint {
        /// The role's ARN.
        role: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Assumes job roles and serves their credentials; one per runner.
pub struct JobRoles {
    config: JobRoleConfig,
    sts: aws_sdk_sts::Client,
    figures: Arc<crate::metrics::Figures>,
    queue: Option<String>,
    region: Option<String>,
    endpoint: tokio::sync::OnceCell<Endpoint>,
}

impl JobRoles {
    /// Job roles assumed with `sts`, tagged with `queue` (the queue's name or URL). Jobs get
    /// the client's region as `AWS_REGION` and `AWS_DEFAULT_REGION` (the name the Python SDK
    /// and the AWS CLI read).
    /// Failed STS calls are counted in `figures`.
    pub fn new(
        config: JobRoleConfig,
        sts: aws_sdk_sts::Client,
        figures: Arc<crate::metrics::Figures>,
        queue: Option<&str>,
    ) -> Self {
        let region = sts.config().region().map(|r| r.to_string());
        JobRoles {
            config,
            sts,
            figures,
            region,
            queue: queue.map(|q| q.rsplit('/').next().unwrap_or(q).to_string()),
            endpoint: tokio::sync::OnceCell::new(),
        }
    }

    /// The role `job` runs as: its own, else the default; `None`: the runner's credentials.
    pub fn role_for<'a>(&'a self, job: &'a JobSpec) -> Option<&'a str> {
        job.role.as_deref().or(self.config.default_role.as_deref())
    }

    /// Assumes the job's role and registers it with the endpoint; `Ok(None)` when the job has
    /// no role.
    pub async fn grant(&self, job: &JobSpec) -> Result<Option<Grant>, GrantError> {
        let Some(role) = self.role_for(job) else {
            return Ok(None);
        };
        let step = job.step_name.as_deref();
        let execution = job.execution.as_deref();
        let request = AssumeRequest {
            role: role.to_string(),
            session_name: names::session_name(step, execution),
            tags: names::session_tags(step, execution, self.queue.as_deref()),
            duration: self.config.session,
        };
        let session = RoleSession::start(
            self.sts.clone(),
            self.figures.clone(),
            request,
            self.config.refresh_margin,
        )
        .await?;
        let endpoint = self
            .endpoint
            .get_or_try_init(Endpoint::start)
            .await
            .map_err(|source| GrantError::Endpoint {
                role: role.to_string(),
                source,
            })?;
        let (token, registration) = endpoint.register(Arc::new(session));
        let mut env = vec![
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                endpoint.url(),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN".to_string(),
                token.clone(),
            ),
        ];
        env.extend(
            ROLE_JOB_VARIABLES
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            let inherited = self.config.region_set.iter().any(|set| set == name);
            if let (Some(region), false) = (&self.region, inherited) {
                env.push((name.to_string(), region.clone()));
            }
        }
        tracing::info!(role, "the job runs as its own role");
        Ok(Some(Grant {
            env,
            token,
            withheld: self.config.withheld.clone(),
            registration,
        }))
    }
}
