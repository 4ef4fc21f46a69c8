//! What a job's bash is given: its variables (the per-job `ATTINI_*` values, then the job's
//! own, CONTRACT.md 5.7), its script text (options and commands only: no value of the job is
//! ever pasted into it) and the redactor for its secrets. Pure; nothing to cancel.

use std::path::Path;

use super::job_dir::JobDir;
use super::redact::{MIN_SECRET_LEN, Redactor};
use crate::job::JobSpec;

/// The job's variables, in the order the Attini Runner exports them (CONTRACT.md 5.7): the
/// per-job `ATTINI_*` values, then the job's own (which may override them).
pub fn variables(job: &JobSpec, dir: &JobDir, runner_exec: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_string(), v));
    if std::env::var_os("ATTINI_RUNNER_EXEC").is_none() {
        set("ATTINI_RUNNER_EXEC", runner_exec.display().to_string());
    }
    if let Some(a) = &job.attini {
        set("ATTINI_ENVIRONMENT_NAME", a.environment.clone());
        set("ATTINI_DISTRIBUTION_NAME", a.distribution_name.clone());
        set("ATTINI_DISTRIBUTION_ID", a.distribution_id.clone());
        set(
            "ATTINI_DISTRIBUTION_ARTIFACTS_PREFIX",
            a.source_prefix.clone(),
        );
        set("ATTINI_OBJECT_IDENTIFIER", a.object_identifier.clone());
    }
    set("ATTINI_INPUT", dir.input().display().to_string());
    set("ATTINI_OUTPUT", dir.output().display().to_string());
    set("ATTINI_SOURCE_DIR", dir.workspace().display().to_string());
    if let Some(step) = &job.step_name {
        set("ATTINI_STEP_NAME", step.clone());
    }
    for (k, v) in job.environment.iter().chain(&job.secret_environment) {
        set(k, v.clone());
    }
    env
}

/// The script: bash options of the Attini Runner, then each command on its own line.
/// Nothing of the job's variables is written into it.
pub fn script_text(commands: &[String]) -> String {
    let mut text = String::from("set -eo pipefail\n");
    for command in commands {
        text.push_str(command);
        text.push('\n');
    }
    text
}

/// The redactor for the job's `secretEnvironment`; warns about values too short to mask.
pub fn redactor_for(job: &JobSpec) -> Redactor {
    for (name, value) in &job.secret_environment {
        if value.len() < MIN_SECRET_LEN {
            tracing::warn!(
                variable = name,
                "secret value is shorter than {MIN_SECRET_LEN} characters and is not redacted"
            );
        }
    }
    Redactor::new(job.secret_environment.values().map(String::as_str))
}
