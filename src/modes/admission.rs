//! The step both AWS policies end with: a parsed job becomes an [`Admission`] once its secret
//! references are read, its role assumed ([`crate::credentials`]), its distribution resolved
//! in S3 and, for Attini jobs, its log object named (CONTRACT.md 5.6.6). A job with a literal
//! `secretEnvironment` value is refused when `ATTINI_REFUSE_LITERAL_SECRETS` is on.
//! Cancellation: dropping the future leaves the message in the queue.

use std::sync::Arc;

use crate::aws::Clients;
use crate::aws::s3::S3Zip;
use crate::aws::s3_log::S3Log;
use crate::aws::secrets::{self, SecretProblem};
use crate::credentials::{Grant, JobRoleConfig, JobRoles};
use crate::engine::names;
use crate::engine::outcome::Report;
use crate::job::{DistributionRef, JobSpec};
use crate::worker::admit::JobCredentials;
use crate::worker::joblog::LogStore;
use crate::worker::{Admission, Admitted};

/// What admitting a job needs besides the job.
#[derive(Clone)]
pub struct Admitter {
    /// The AWS clients.
    pub clients: Clients,
    /// The job roles.
    pub roles: Arc<JobRoles>,
    /// Refuse literal `secretEnvironment` values (`ATTINI_REFUSE_LITERAL_SECRETS`).
    pub refuse_literal_secrets: bool,
}

impl Admitter {
    /// The admitter of a runner serving `queue_url`.
    pub fn new(
        clients: &Clients,
        roles: JobRoleConfig,
        refuse_literal_secrets: bool,
        queue_url: &str,
    ) -> Self {
        let sts = aws_sdk_sts::Client::new(&clients.config);
        Admitter {
            clients: clients.clone(),
            roles: Arc::new(JobRoles::new(
                roles,
                sts,
                clients.figures.clone(),
                Some(queue_url),
            )),
            refuse_literal_secrets,
        }
    }
}

/// Admits `job`: its secret references read, its role assumed, its distribution from S3 and,
/// for Attini jobs, its log object. `logs_at` is where the complete log can be read, quoted in
/// failure causes.
pub async fn resolve(
    mut job: JobSpec,
    token: String,
    admitter: &Admitter,
    logs_at: Option<String>,
) -> Admission {
    let clients = &admitter.clients;
    let s3 = &clients.s3;
    if admitter.refuse_literal_secrets
        && let Some(name) = job.secret_environment.keys().next()
    {
        let cause = format!(
            "secretEnvironment.{name} holds a value, and this runner refuses literal secrets \
             (ATTINI_REFUSE_LITERAL_SECRETS=true) so that none waits in a queue or dead-letter \
             queue. Refer to it instead: {{\"secretsManager\": \"<secret id>\"}} or \
             {{\"ssmParameter\": \"<name>\"}}"
        );
        return refuse(&job, token, names::INVALID_JOB, cause);
    }
    if !job.secret_references.is_empty() {
        match secrets::read_all(&clients.secrets, &job.secret_references).await {
            Ok(values) => job.secret_environment.extend(values),
            Err(e) => {
                let name = match e.problem {
                    SecretProblem::Denied { .. } | SecretProblem::Call(_) => names::CREDENTIALS,
                    _ => names::INVALID_JOB,
                };
                return refuse(&job, token, name, e.to_string());
            }
        }
    }
    let credentials = match admitter.roles.grant(&job).await {
        Ok(grant) => grant.map(job_credentials),
        Err(e) => {
            let cause = format!("The job did not start: {e}");
            return refuse(&job, token, names::CREDENTIALS, cause);
        }
    };
    let source = match &job.distribution {
        None => None,
        Some(DistributionRef::S3 {
            bucket,
            key,
            identity,
        }) => {
            let zip = S3Zip::new(s3.built(), bucket, key, clients.figures.clone());
            match zip.into_source(identity.clone()).await {
                Ok(source) => Some(source),
                Err(problem) => {
                    let name = names::of_fetch(&problem);
                    let cause = format!("Could not get the distribution: {problem}");
                    return refuse(&job, token, name, cause);
                }
            }
        }
        Some(DistributionRef::Local { path }) => {
            let cause = format!(
                "distribution.path ({}) is only for local mode; give {{\"bucket\": ..., \"key\": ...}} of a zip in S3",
                path.display()
            );
            return refuse(&job, token, names::INVALID_JOB, cause);
        }
    };
    let log_store = job.attini.as_ref().map(|a| {
        let figures = clients.figures.clone();
        Arc::new(S3Log::new(
            s3.built(),
            &a.source_bucket,
            &log_key(&job),
            figures,
        )) as Arc<dyn LogStore>
    });
    Admission::Run(Box::new(Admitted {
        job,
        token,
        source,
        log_store,
        logs_at,
        credentials,
    }))
}

/// A grant as the worker hands it to the engine: the runner's credentials and settings
/// withheld, the token masked, the grant kept (and its token valid) until the job task ends.
fn job_credentials(grant: Grant) -> JobCredentials {
    JobCredentials {
        env: grant.env,
        withheld: grant.withheld,
        secrets: vec![grant.token],
        guard: Box::new(grant.registration),
    }
}

/// A refusal of `job` named `name` (as its format is told: see [`names::for_format`]).
fn refuse(job: &JobSpec, token: String, name: &str, cause: String) -> Admission {
    Admission::Fail {
        token,
        report: names::for_format(Report::failure(name, cause), job.format),
    }
}

/// `attini/deployment/logs/runner/<env>/<dist>/<distId>/<stepName>/<executionName>`.
pub fn log_key(job: &JobSpec) -> String {
    let Some(a) = &job.attini else {
        return String::new();
    };
    format!(
        "attini/deployment/logs/runner/{}/{}/{}/{}/{}",
        a.environment,
        a.distribution_name,
        a.distribution_id,
        job.step_name.as_deref().unwrap_or_default(),
        a.execution_name()
    )
}
