//! `attini-runner validate JOB.json`: parses and checks a job file as every mode would, and
//! runs nothing. Exit 0 with a one-line summary on stdout when the job is valid; 65 with the
//! error (naming the field, what was wrong and what to do) on stderr when it is not; 66 when
//! the file cannot be read. Synchronous; nothing to cancel.

use std::path::Path;

use super::ExitStatus;
use crate::job::{self, DistributionRef, JobFormat, JobSpec};

/// Checks the job file at `path` (`-`: standard input) and prints what was found.
pub fn run(path: &Path) -> ExitStatus {
    let body = match super::local::read_job_text(path) {
        Ok(body) => body,
        Err(e) => {
            eprintln!(
                "attini-runner: cannot read the job file {}: {e}",
                path.display()
            );
            return ExitStatus::NoInput;
        }
    };
    match job::parse(&body) {
        Ok(job) => {
            println!("{}: {}", path.display(), summary(&job));
            ExitStatus::Success
        }
        Err(e) => {
            eprintln!("attini-runner: {}: {e}", path.display());
            ExitStatus::InvalidJob
        }
    }
}

/// One line saying what the job is: format, kind, commands, distribution, and what a mode
/// will still need.
pub fn summary(job: &JobSpec) -> String {
    let format = match job.format {
        JobFormat::Attini => "Attini runner message",
        JobFormat::Native => "native job",
    };
    let mut parts = vec![format!(
        "a valid {format} of kind {} with {} command(s)",
        job.kind,
        job.commands.len()
    )];
    match &job.distribution {
        Some(DistributionRef::S3 { bucket, key, .. }) => {
            parts.push(format!("distribution s3://{bucket}/{key}"))
        }
        Some(DistributionRef::Local { path }) => {
            parts.push(format!("distribution {}", path.display()))
        }
        None => {}
    }
    if !job.secret_references.is_empty() {
        parts.push(format!(
            "{} secret reference(s), read in AWS modes only",
            job.secret_references.len()
        ));
    }
    if job.token.is_none() {
        parts.push("no taskToken: fine for `local`; the state machine adds it in AWS modes (\"taskToken.$\": \"$$.Task.Token\")".into());
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_secret_references_only_when_there_are_some() {
        let plain = job::parse(r#"{"commands": ["true"], "taskToken": "t"}"#).unwrap();
        assert_eq!(
            summary(&plain),
            "a valid native job of kind commands with 1 command(s)"
        );
        let with = job::parse(
            r#"{"commands": ["true"], "taskToken": "t",
                "secretEnvironment": {"A": {"ssmParameter": "/a"}, "B": {"ssmParameter": "/b"}}}"#,
        )
        .unwrap();
        assert!(
            summary(&with).ends_with("; 2 secret reference(s), read in AWS modes only"),
            "{}",
            summary(&with)
        );
    }
}
