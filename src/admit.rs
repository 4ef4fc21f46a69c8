//! Turning a received message into an [`Admission`], shared by the Attini and native
//! policies: parse (a bad job is answered with a clear failure when its token can be read,
//! otherwise deleted with an error log), then resolve the distribution and the log object.
//! Cancellation: dropping the future leaves the message in the queue.

use crate::dispatch::{Admission, Admitted};
use crate::fetch::S3Zip;
use crate::job::{self, DistributionRef, JobSpec};
use crate::joblog::LogObject;
use crate::queue::Message;
use crate::report::{RUNTIME_ERROR, Report};

/// The job and its token, or the admission that refuses it.
pub fn parse(message: &Message) -> Result<(JobSpec, String), Admission> {
    match job::parse(&message.body) {
        Ok(job) => match job.token.clone() {
            Some(token) => Ok((job, token)),
            None => Err(Admission::Delete(
                "the job has no task token (`taskToken`, or `deploymentPlanExecutionMetadata.sfnToken`), so it cannot be answered".into(),
            )),
        },
        Err(e) => Err(match job::salvage_token(&message.body) {
            Some(token) => Admission::Fail {
                token,
                report: Report::failure(RUNTIME_ERROR, format!("The job message is invalid: {e}")),
            },
            None => Admission::Delete(format!(
                "the message is not a job ({e}) and carries no task token to answer; body starts with {:?}",
                message.body.chars().take(200).collect::<String>()
            )),
        }),
    }
}

/// Admits `job`: its distribution from S3 and, for Attini jobs, the log object of
/// CONTRACT.md 5.6.6.
pub async fn admit(
    job: JobSpec,
    token: String,
    s3: &aws_sdk_s3::Client,
    logs_at: Option<String>,
) -> Admission {
    let source = match &job.distribution {
        None => None,
        Some(DistributionRef::S3 {
            bucket,
            key,
            identity,
        }) => {
            match S3Zip::new(s3.clone(), bucket, key)
                .into_source(identity.clone())
                .await
            {
                Ok(source) => Some(source),
                Err(problem) => {
                    return Admission::Fail {
                        token,
                        report: Report::failure(
                            RUNTIME_ERROR,
                            format!("Could not get the distribution: {problem}"),
                        ),
                    };
                }
            }
        }
        Some(DistributionRef::Local { path }) => {
            return Admission::Fail {
                token,
                report: Report::failure(
                    RUNTIME_ERROR,
                    format!(
                        "distribution.path ({}) is only for local mode; give {{\"bucket\": ..., \"key\": ...}} of a zip in S3",
                        path.display()
                    ),
                ),
            };
        }
    };
    let log_object = job.attini.as_ref().map(|a| LogObject {
        s3: s3.clone(),
        bucket: a.source_bucket.clone(),
        key: log_key(&job),
    });
    Admission::Run(Box::new(Admitted {
        job,
        token,
        source,
        log_object,
        logs_at,
    }))
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
