//! What `attini-runner logs` and `replay` share: the AWS clients for an execution's region, its
//! history, and the runner tasks in it (those whose resource may carry a job, see
//! [`recorded`]), by step name. Dropping a read cancels it.

use std::sync::Arc;

use super::ExitStatus;
use super::recorded;
use crate::aws::Clients;
use crate::aws::history::{self, ExecutionArn, History, HistoryError, Task};
use crate::calls::CallError;
use crate::config::Settings;
use crate::metrics::Figures;

/// Why an execution's runner task cannot be shown or replayed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionError {
    /// The ARN is wrong, the execution unknown, or its history unreadable.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// `--step` names no task of the execution.
    #[error(
        "execution {arn} has no runner task in a step named {step:?}; its runner steps: {steps}"
    )]
    NoStep {
        /// The execution.
        arn: String,
        /// What was asked for.
        step: String,
        /// The runner steps it has.
        steps: String,
    },
    /// The execution has no runner task (yet).
    #[error(
        "execution {arn} has no runner task yet ({status}); its tasks: {steps}. With --follow, logs waits for one"
    )]
    NoRunnerTask {
        /// The execution.
        arn: String,
        /// Its status.
        status: String,
        /// The steps of its tasks.
        steps: String,
    },
    /// Something else the command needs is missing or refused.
    #[error("{0}")]
    Refused(String),
    /// A call failed.
    #[error("{0}")]
    Call(#[from] CallError),
    /// The job's distribution could not be fetched.
    #[error("could not get the distribution: {0}")]
    Distribution(#[from] crate::engine::distribution::FetchError),
}

impl ExecutionError {
    /// The exit status it ends the command with: 64 for a bad ARN or flag, 66 for something
    /// that is not there (a log group, a stack, a distribution), 69 when AWS could not be
    /// asked or refused (a distribution denied, a download that broke off).
    pub fn status(&self) -> ExitStatus {
        use crate::engine::distribution::FetchError;
        match self {
            ExecutionError::Distribution(FetchError::Missing { .. }) => ExitStatus::NoInput,
            ExecutionError::Distribution(FetchError::TooLarge { .. }) => ExitStatus::Usage,
            ExecutionError::Distribution(FetchError::Write { .. }) => ExitStatus::Failure,
            ExecutionError::Distribution(_) => ExitStatus::Unavailable,
            ExecutionError::History(HistoryError::BadArn { .. }) => ExitStatus::Usage,
            ExecutionError::Refused(_) => ExitStatus::Usage,
            ExecutionError::Call(e) if e.class == crate::calls::ErrorClass::Missing => {
                ExitStatus::NoInput
            }
            ExecutionError::History(HistoryError::Call(_)) | ExecutionError::Call(_) => {
                ExitStatus::Unavailable
            }
            _ => ExitStatus::NoInput,
        }
    }
}

/// An execution being looked at.
pub struct Execution {
    /// Its ARN.
    pub arn: ExecutionArn,
    /// Clients in its region.
    pub clients: Clients,
    /// Where failed calls are counted (nowhere shown; the SDK's classification needs it).
    pub figures: Arc<Figures>,
}

impl Execution {
    /// Checks `arn` and builds clients for its region, whatever `AWS_REGION` says (the
    /// settings' endpoints and timeouts).
    ///
    /// # Errors
    /// [`HistoryError::BadArn`].
    pub async fn open(arn: &str, settings: &Settings) -> Result<Self, ExecutionError> {
        let arn = ExecutionArn::parse(arn)?;
        let mut aws = settings.aws.clone();
        aws.region = Some(arn.region.clone());
        let figures = Arc::new(Figures::default());
        let clients = Clients::load(&aws, figures.clone()).await;
        Ok(Execution {
            arn,
            clients,
            figures,
        })
    }

    /// Its history now.
    ///
    /// # Errors
    /// The execution is unknown or its history unreadable.
    pub async fn history(&self) -> Result<History, ExecutionError> {
        Ok(history::read(&self.clients.sfn, &self.arn, &self.figures).await?)
    }

    /// The runner tasks of `history` in the order they were scheduled, those of step `step`
    /// when given.
    ///
    /// # Errors
    /// [`ExecutionError::NoStep`] or [`ExecutionError::NoRunnerTask`].
    pub fn runner_tasks<'h>(
        &self,
        history: &'h History,
        step: Option<&str>,
    ) -> Result<Vec<&'h Task>, ExecutionError> {
        let runner: Vec<&Task> = history
            .tasks
            .iter()
            .filter(|t| recorded::may_carry_a_job(t))
            .collect();
        let names = |tasks: &[&Task]| {
            let mut names: Vec<&str> = tasks.iter().map(|t| t.step.as_str()).collect();
            names.dedup();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let chosen: Vec<&Task> = match step {
            Some(step) => runner.iter().copied().filter(|t| t.step == step).collect(),
            None => runner.clone(),
        };
        if !chosen.is_empty() {
            return Ok(chosen);
        }
        match step {
            Some(step) if !runner.is_empty() => Err(ExecutionError::NoStep {
                arn: self.arn.arn.clone(),
                step: step.to_string(),
                steps: names(&runner),
            }),
            _ => Err(ExecutionError::NoRunnerTask {
                arn: self.arn.arn.clone(),
                status: history.status.clone(),
                steps: names(&history.tasks.iter().collect::<Vec<_>>()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::ErrorClass;

    fn call(class: ErrorClass) -> CallError {
        CallError {
            operation: "FilterLogEvents",
            class,
            message: "x".into(),
            source: None,
        }
    }

    #[test]
    fn each_error_ends_the_command_with_its_status() {
        let bad = HistoryError::BadArn {
            arn: "x".into(),
            why: "y".into(),
        };
        let status = |e: ExecutionError| e.status().code();
        assert_eq!(status(bad.into()), 64);
        assert_eq!(status(ExecutionError::Refused("no".into())), 64);
        let unknown = HistoryError::NoSuchExecution {
            arn: "a".into(),
            region: "r".into(),
        };
        assert_eq!(status(unknown.into()), 66);
        let no_step = ExecutionError::NoStep {
            arn: "a".into(),
            step: "s".into(),
            steps: "t".into(),
        };
        assert_eq!(status(no_step), 66);
        assert_eq!(status(call(ErrorClass::Missing).into()), 66);
        assert_eq!(status(call(ErrorClass::Denied).into()), 69);
        assert_eq!(
            status(HistoryError::Call(call(ErrorClass::Transient)).into()),
            69
        );
    }

    #[test]
    fn a_distribution_that_cannot_be_fetched_ends_the_command_with_its_status() {
        use crate::engine::distribution::FetchError;
        let status = |e: FetchError| ExecutionError::from(e).status().code();
        let what = || "s3://b/k".to_string();
        let detail = || "d".to_string();
        assert_eq!(
            status(FetchError::Denied {
                what: what(),
                detail: detail()
            }),
            69,
            "AWS refused: not a usage error"
        );
        assert_eq!(status(call(ErrorClass::Transient).into()), 69);
        let broke = std::sync::Arc::new(std::io::Error::other("reset"));
        assert_eq!(status(FetchError::BrokeOff(broke)), 69);
        assert_eq!(
            status(FetchError::Missing {
                what: what(),
                detail: detail()
            }),
            66
        );
        let large = FetchError::TooLarge {
            what: what(),
            size: 2,
            limit: 1,
        };
        assert!(
            ExecutionError::from(large)
                .to_string()
                .starts_with("could not get the distribution: s3://b/k is 2 bytes")
        );
    }
}
