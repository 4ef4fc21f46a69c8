//! The error names a failed job is reported with, so that a state machine can `Retry` what the
//! runner's side broke (a timeout, the distribution, the disk, credentials, a stop) and `Catch`
//! what the job broke (its exit code, its input, its output). Native jobs get the names below;
//! Attini jobs keep the two names their plans match today ([`for_format`]): a `Runner.*` or
//! `Job.*` name becomes `RuntimeError`, a timeout `ScriptExecutionError`. `Runner.Interrupted`
//! and `Runner.StaleExecution` are the same in both. The README's table of names is the
//! contract. Pure; nothing to cancel.

use super::distribution::{DistributionError, ExtractError, FetchError};
use super::outcome::{RUNTIME_ERROR, Report, SCRIPT_EXECUTION_ERROR};
use crate::job::JobFormat;

/// The job ran longer than its timeout (`timeoutSeconds`, `ATTINI_JOB_TIMEOUT`).
pub const TIMEOUT: &str = "Runner.Timeout";
/// The runner could not get the distribution: denied, the download broke off or failed,
/// unpacking or copying could not write, or it all took longer than the workspace timeout.
pub const DISTRIBUTION: &str = "Runner.Distribution";
/// The runner's volume has no room for the job's workspace.
pub const DISK: &str = "Runner.Disk";
/// The job's role could not be assumed, or the runner may not read a secret it refers to.
pub const CREDENTIALS: &str = "Runner.Credentials";
/// The job's kind needs a tool (`cdk`, `sam`) the runner does not have.
pub const MISSING_TOOL: &str = "Runner.MissingTool";
/// The job itself is wrong: a field, a working directory, an environment too large, a
/// distribution or secret that does not exist, a distribution too large or not a safe zip.
pub const INVALID_JOB: &str = "Job.Invalid";
/// The job's output is not what Step Functions takes (too large, not a regular file).
pub const INVALID_OUTPUT: &str = "Job.InvalidOutput";

/// Every name a job can be reported with, native first: (name, what produces it, retry it).
pub const ALL: [(&str, &str, bool); 11] = [
    (
        SCRIPT_EXECUTION_ERROR,
        "a command exited non-zero or was killed by a signal",
        false,
    ),
    (TIMEOUT, "the job ran longer than its timeout", true),
    (
        super::outcome::INTERRUPTED_ERROR,
        "the runner stopped (drain, shutdown) before the job finished",
        true,
    ),
    (DISTRIBUTION, "the distribution could not be had", true),
    (DISK, "no room on the runner's volume", true),
    (
        CREDENTIALS,
        "the job's role or a secret could not be had",
        true,
    ),
    (MISSING_TOOL, "the kind's tool is missing", false),
    (INVALID_JOB, "the job is wrong", false),
    (INVALID_OUTPUT, "the output is wrong", false),
    (RUNTIME_ERROR, "an internal failure of the runner", false),
    (
        "Runner.StaleExecution",
        "Attini mode: the execution is no longer the deployment's",
        false,
    ),
];

/// The name of a distribution that could not be put into a workspace: the job's fault when
/// what it names is missing, too large or not a safe zip; the runner's when it could not get
/// or write it (denied, broken off, no room, too slow).
pub fn of_distribution(e: &DistributionError) -> &'static str {
    match e {
        DistributionError::NoSpace(_) => DISK,
        DistributionError::Fetch { problem, .. } => of_fetch(problem),
        DistributionError::Extract(ExtractError::Io { .. } | ExtractError::Stopped) => DISTRIBUTION,
        DistributionError::Extract(_) | DistributionError::Local { .. } => INVALID_JOB,
        DistributionError::Workspace { .. } => DISTRIBUTION,
    }
}

/// The name of a distribution download that failed: see [`of_distribution`].
pub fn of_fetch(e: &FetchError) -> &'static str {
    match e {
        FetchError::Missing { .. } | FetchError::TooLarge { .. } => INVALID_JOB,
        FetchError::Denied { .. }
        | FetchError::Write { .. }
        | FetchError::BrokeOff(_)
        | FetchError::Call(_) => DISTRIBUTION,
    }
}

/// True for the names of failures on the runner's side, which the breaker counts
/// (`ATTINI_MAX_RUNNER_FAILURES`); a job's own failures, its timeout and a stop never count.
pub fn is_runner_fault(name: &str) -> bool {
    matches!(
        name,
        DISTRIBUTION | DISK | CREDENTIALS | MISSING_TOOL | RUNTIME_ERROR
    )
}

/// `report` as a job of `format` is told it: Attini jobs keep the names their plans match.
pub fn for_format(report: Report, format: JobFormat) -> Report {
    match (report, format) {
        (Report::Failure { error, cause }, JobFormat::Attini) => Report::Failure {
            error: attini_name(&error).to_string(),
            cause,
        },
        (report, _) => report,
    }
}

/// The name an Attini plan gets for `name`.
fn attini_name(name: &str) -> &str {
    match name {
        TIMEOUT => SCRIPT_EXECUTION_ERROR,
        DISTRIBUTION | DISK | CREDENTIALS | MISSING_TOOL | INVALID_JOB | INVALID_OUTPUT => {
            RUNTIME_ERROR
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attini_jobs_keep_their_two_names_and_natives_get_the_new_ones() {
        for (name, _, _) in ALL {
            let report = Report::failure(name, "why");
            let attini = for_format(report.clone(), JobFormat::Attini);
            let Report::Failure { error, cause } = attini else {
                panic!("a failure stays a failure")
            };
            assert_eq!(cause, "why");
            let kept = [
                SCRIPT_EXECUTION_ERROR,
                RUNTIME_ERROR,
                super::super::outcome::INTERRUPTED_ERROR,
                "Runner.StaleExecution",
            ];
            assert!(kept.contains(&error.as_str()), "{name} -> {error}");
            assert_eq!(for_format(report.clone(), JobFormat::Native), report);
        }
        let timeout = for_format(Report::failure(TIMEOUT, "t"), JobFormat::Attini);
        assert!(
            matches!(timeout, Report::Failure { error, .. } if error == SCRIPT_EXECUTION_ERROR)
        );
    }

    /// A download that names nothing there or something too large is the job's fault (not
    /// retried); one the runner could not make is the runner's (retried, counted).
    #[test]
    fn a_failed_download_is_named_by_whose_fault_it_is() {
        let what = || "s3://b/k".to_string();
        let missing = FetchError::Missing {
            what: what(),
            detail: "NoSuchKey".into(),
        };
        let too_large = FetchError::TooLarge {
            what: what(),
            size: 2,
            limit: 1,
        };
        let denied = FetchError::Denied {
            what: what(),
            detail: "AccessDenied".into(),
        };
        let broke = FetchError::BrokeOff(std::sync::Arc::new(std::io::Error::other("reset")));
        assert_eq!(of_fetch(&missing), INVALID_JOB);
        assert_eq!(of_fetch(&too_large), INVALID_JOB);
        assert_eq!(of_fetch(&denied), DISTRIBUTION);
        assert_eq!(of_fetch(&broke), DISTRIBUTION);
        assert!(!is_runner_fault(of_fetch(&missing)));
        assert!(is_runner_fault(of_fetch(&denied)));
    }
}
