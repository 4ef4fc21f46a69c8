//! What a job's bash is given: its variables (the per-job `ATTINI_*` values, then the job's
//! own, CONTRACT.md 5.7), its script text (options and commands only: no value of the job is
//! ever pasted into it) and the redactor for its secrets. Pure; nothing to cancel.

use std::path::Path;

use super::executor::progress;
use super::job_dir::JobDir;
use super::redact::{MIN_SECRET_LEN, Redactor};
use crate::job::JobSpec;

/// The job's variables, in the order the Attini Runner exports them (CONTRACT.md 5.7): the
/// per-job `ATTINI_*` values, then the job's own (which may override them).
/// `runner_exec`, when given, becomes `ATTINI_RUNNER_EXEC`.
pub fn variables(job: &JobSpec, dir: &JobDir, runner_exec: Option<&Path>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| env.push((k.to_string(), v));
    if let Some(exec) = runner_exec {
        set("ATTINI_RUNNER_EXEC", exec.display().to_string());
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
    if let Some(lock) = &job.lock {
        set("ATTINI_LOCK", lock.clone());
    }
    for (k, v) in job.environment.iter().chain(&job.secret_environment) {
        set(k, v.clone());
    }
    env
}

/// The runner's credential variables: none reaches a job that has credentials of its own.
pub const CREDENTIAL_VARIABLES: [&str; 17] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    // The ECS agent switches this task's scale-in protection, with no credentials.
    "ECS_AGENT_URI",
];

/// What a job with credentials of its own must not inherit from the runner's environment
/// (`names`): [`CREDENTIAL_VARIABLES`] and the runner's own settings (`settings`, the
/// catalogue's names; `RUST_LOG`; every `OTEL_*`, whose headers often hold an API key).
pub fn withheld<'a>(
    names: impl Iterator<Item = String>,
    settings: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut withheld: Vec<String> = CREDENTIAL_VARIABLES
        .into_iter()
        .chain(settings)
        .chain(["RUST_LOG"])
        .map(str::to_string)
        .collect();
    withheld.extend(names.filter(|n| n.starts_with("OTEL_")));
    withheld
}

/// The script: bash options of the Attini Runner, the `prelude` (a tool's function, see
/// [`super::tools`]), then each command on its own line, after the note of its start into
/// `progress` ([`progress::mark`]). Nothing of the job's variables is written into it.
pub fn script_text(prelude: Option<&str>, commands: &[String], progress: &Path) -> String {
    let mut text = String::from("set -eo pipefail\n");
    if let Some(prelude) = prelude {
        text.push_str(prelude);
        text.push('\n');
    }
    for (n, command) in commands.iter().enumerate() {
        text.push_str(&progress::mark(n + 1, progress));
        text.push_str(command);
        text.push('\n');
    }
    text
}

/// The redactor for the job's `secretEnvironment` and `more` secrets of the run (its token,
/// the runner's own AWS secrets); warns about values too short to mask.
pub fn redactor_for<'a>(job: &'a JobSpec, more: impl Iterator<Item = &'a String>) -> Redactor {
    for (name, value) in &job.secret_environment {
        if value.len() < MIN_SECRET_LEN {
            tracing::warn!(
                variable = name,
                "secret value is shorter than {MIN_SECRET_LEN} characters and is not redacted"
            );
        }
    }
    let values = job.secret_environment.values().chain(more);
    Redactor::new(values.map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(value: serde_json::Value) -> JobSpec {
        crate::job::parse(&value.to_string()).unwrap()
    }

    #[test]
    fn the_script_holds_the_options_and_the_commands_only() {
        let commands = vec!["echo a".to_string(), "./b.sh".to_string()];
        let file = Path::new("/jobs/j/progress");
        let expected = format!(
            "set -eo pipefail\n{}echo a\n{}./b.sh\n",
            progress::mark(1, file),
            progress::mark(2, file)
        );
        assert_eq!(script_text(None, &commands, file), expected);
    }

    #[test]
    fn variables_come_in_the_attini_runners_order_and_the_jobs_win() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::create(tmp.path(), "j").unwrap();
        let spec = job(json!({"commands": ["true"], "stepName": "S",
            "environment": {"STAGE": "dev", "ATTINI_STEP_NAME": "mine"},
            "secretEnvironment": {"TOKEN": "s3cr3t-value"}}));
        let vars = variables(&spec, &dir, Some(Path::new("/bin/runner")));
        let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "ATTINI_RUNNER_EXEC",
                "ATTINI_INPUT",
                "ATTINI_OUTPUT",
                "ATTINI_SOURCE_DIR",
                "ATTINI_STEP_NAME",
                "ATTINI_STEP_NAME",
                "STAGE",
                "TOKEN"
            ]
        );
        assert_eq!(vars[0].1, "/bin/runner");
        assert_eq!(vars[1].1, dir.input().display().to_string());
        assert_eq!(vars[2].1, dir.output().display().to_string());
        assert_eq!(vars[3].1, dir.workspace().display().to_string());
        // Later entries win: the job's own ATTINI_STEP_NAME overrides the runner's.
        assert_eq!((vars[4].1.as_str(), vars[5].1.as_str()), ("S", "mine"));
        assert_eq!(vars[7].1, "s3cr3t-value");
        let without = variables(&spec, &dir, None);
        assert!(without.iter().all(|(k, _)| k != "ATTINI_RUNNER_EXEC"));
        assert!(vars.iter().all(|(k, _)| k != "ATTINI_LOCK"));
        let locked = job(json!({"commands": ["true"], "lock": "db-1"}));
        let vars = variables(&locked, &dir, None);
        assert!(vars.contains(&("ATTINI_LOCK".to_string(), "db-1".to_string())));
    }

    #[test]
    fn attini_jobs_get_their_deployment_variables() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = JobDir::create(tmp.path(), "j").unwrap();
        let spec =
            crate::job::parse(include_str!("../../tests/fixtures/attini-message.json")).unwrap();
        let vars = variables(&spec, &dir, None);
        let value = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let attini = spec.attini.as_ref().unwrap();
        assert_eq!(
            value("ATTINI_ENVIRONMENT_NAME"),
            Some(attini.environment.clone())
        );
        assert_eq!(
            value("ATTINI_DISTRIBUTION_NAME"),
            Some(attini.distribution_name.clone())
        );
        assert_eq!(
            value("ATTINI_DISTRIBUTION_ID"),
            Some(attini.distribution_id.clone())
        );
        assert_eq!(
            value("ATTINI_DISTRIBUTION_ARTIFACTS_PREFIX"),
            Some(attini.source_prefix.clone())
        );
        assert_eq!(
            value("ATTINI_OBJECT_IDENTIFIER"),
            Some(attini.object_identifier.clone())
        );
    }

    #[test]
    fn a_job_with_its_own_credentials_inherits_no_credential_or_setting_of_the_runner() {
        let names = ["PATH", "OTEL_EXPORTER_OTLP_HEADERS", "HOME"].map(String::from);
        let withheld = withheld(
            names.into_iter(),
            ["ATTINI_QUEUE_URL", "ATTINI_OPS_ADDR"].into_iter(),
        );
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "ATTINI_QUEUE_URL",
            "ATTINI_OPS_ADDR",
            "OTEL_EXPORTER_OTLP_HEADERS",
            "ECS_AGENT_URI",
        ] {
            assert!(withheld.iter().any(|w| w == name), "{name} not withheld");
        }
        for kept in ["PATH", "HOME", "AWS_REGION", "ATTINI_RUNNER_EXEC"] {
            assert!(!withheld.iter().any(|w| w == kept), "{kept} withheld");
        }
    }

    #[test]
    fn the_redactor_masks_the_jobs_secrets() {
        let spec = job(
            json!({"commands": ["true"], "secretEnvironment": {"A": "s3cr3t-value", "B": "ab"}}),
        );
        let token = "endpoint-t0ken".to_string();
        let redactor = redactor_for(&spec, std::iter::once(&token));
        assert_eq!(
            redactor.redact("x s3cr3t-value y ab endpoint-t0ken"),
            "x *** y ab ***"
        );
    }
}
