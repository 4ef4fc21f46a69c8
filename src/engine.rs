//! Runs one job from start to report: workspace, input and output files, environment,
//! script, execution, output rules, cleanup. Every mode (local, Attini, standalone) runs jobs
//! through [`Engine::run`]; only where the distribution comes from and where the report goes
//! differ.
//!
//! A job's failure is a value ([`Report::Failure`]), never an error of the engine.
//! Cancellation: trip the token passed to [`Engine::run`] and the job's processes are ended
//! (SIGTERM, grace, SIGKILL) and it reports `Runner.Interrupted`; dropping the future
//! instead kills the job's bash (`kill_on_drop`) and removes the job directory.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::EngineConfig;
use crate::distribution::{Distributions, Source};
use crate::executor::{self, Execution, LogSink, ScriptRun, Termination};
use crate::job::JobSpec;
use crate::redact::{MIN_SECRET_LEN, Redactor};
use crate::report::{self, MAX_OUTPUT_BYTES, RUNTIME_ERROR, Report};
use crate::workspace::{JobDir, remove_tree};

/// The engine could not start (its work directory cannot be created).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot create the runner's work directory {path}: {source}; set ATTINI_WORK_DIR to a writable folder"
)]
pub struct EngineError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// Per-run choices that do not belong to the job itself.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The distribution, already available on disk; `None` runs in an empty workspace.
    pub source: Option<Source>,
    /// Where the complete log can be read, quoted in failure causes.
    pub logs_at: Option<String>,
    /// Run in this directory instead of the workspace (startup commands).
    pub cwd: Option<PathBuf>,
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// Unique id of this run of the job.
    pub job_id: String,
    /// What to answer Step Functions.
    pub report: Report,
    /// How the script ran, if it was started.
    pub execution: Option<Execution>,
}

/// Runs jobs; one per runner process, shared by all jobs.
pub struct Engine {
    config: EngineConfig,
    root: PathBuf,
    jobs: PathBuf,
    distributions: Distributions,
}

impl Engine {
    /// Creates `<work_dir>/run-<uuid>/` with its job and cache folders, and makes this process
    /// the reaper of orphaned job processes.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let root = config
            .work_dir
            .join(format!("run-{}", uuid::Uuid::new_v4()));
        let jobs = root.join("jobs");
        let err = |path: &PathBuf| {
            let path = path.clone();
            move |source| EngineError { path, source }
        };
        std::fs::create_dir_all(&jobs).map_err(err(&jobs))?;
        let distributions =
            Distributions::new(root.join("cache"), config.limits, config.cache_bytes)
                .map_err(err(&root))?;
        executor::procs::become_subreaper();
        Ok(Engine {
            config,
            root,
            jobs,
            distributions,
        })
    }

    /// Runs `job` to its end and returns what to report. Output lines go to `sink`.
    pub async fn run(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        sink: Arc<dyn LogSink>,
        cancel: &CancellationToken,
    ) -> JobResult {
        let job_id = uuid::Uuid::new_v4().to_string();
        let result = match JobDir::create(&self.jobs, &job_id) {
            Ok(dir) => {
                let result = self
                    .prepare_and_execute(job, options, sink, cancel, &job_id, &dir)
                    .await;
                dir.remove().await;
                result
            }
            Err(e) => Err(runtime(format!(
                "could not create the job directory in {}: {e}",
                self.jobs.display()
            ))),
        };
        let (report, execution) = match result {
            Ok((report, execution)) => (report, Some(execution)),
            Err(report) => (report, None),
        };
        JobResult {
            job_id,
            report,
            execution,
        }
    }

    async fn prepare_and_execute(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        sink: Arc<dyn LogSink>,
        cancel: &CancellationToken,
        job_id: &str,
        dir: &JobDir,
    ) -> Result<(Report, Execution), Report> {
        let workspace = dir.workspace();
        if let Some(source) = &options.source {
            self.distributions
                .fill(source, &workspace)
                .await
                .map_err(|e| runtime(e.to_string()))?;
        }
        let cwd = match &job.working_directory {
            None => options.cwd.clone().unwrap_or_else(|| workspace.clone()),
            Some(sub) => {
                let cwd = workspace.join(sub);
                if !cwd.is_dir() {
                    return Err(runtime(format!(
                        "workingDirectory {sub:?} is not a folder in the distribution; give a path relative to the distribution's root"
                    )));
                }
                cwd
            }
        };
        let input = serde_json::to_vec(&job.input).unwrap_or_else(|_| b"{}".to_vec());
        write(&dir.input(), &input).await?;
        write(&dir.output(), b"").await?;
        write(&dir.script(), script_text(&job.commands).as_bytes()).await?;

        let redactor = redactor_for(job);
        let run = ScriptRun {
            script: dir.script(),
            cwd,
            env: self.environment(job, dir),
            job_id: job_id.to_string(),
            timeout: job.timeout.unwrap_or(self.config.job_timeout),
            grace: self.config.kill_grace,
            redactor: redactor.clone(),
        };
        let execution = executor::execute(&run, sink, cancel)
            .await
            .map_err(|e| runtime(e.to_string()))?;
        let report = match execution.termination {
            Termination::Exited(0) => read_output(&dir.output(), &redactor).await,
            ref other => report::script_failure(
                other,
                &execution.sweep,
                self.config.kill_grace.as_secs(),
                &execution.output.tail,
                options.logs_at.as_deref(),
            ),
        };
        Ok((report, execution))
    }

    /// The job's variables, in the order the Attini Runner exports them (CONTRACT.md 5.7): the
    /// per-job `ATTINI_*` values, then the job's own (which may override them).
    fn environment(&self, job: &JobSpec, dir: &JobDir) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| env.push((k.to_string(), v));
        if std::env::var_os("ATTINI_RUNNER_EXEC").is_none() {
            set(
                "ATTINI_RUNNER_EXEC",
                self.config.runner_exec.display().to_string(),
            );
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
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Err(e) = remove_tree(&self.root) {
            tracing::warn!(dir = %self.root.display(), error = %e, "could not remove the runner's work directory");
        }
    }
}

/// The script: bash options of the Attini Runner, then each command on its own line.
/// Nothing of the job's variables is written into it.
fn script_text(commands: &[String]) -> String {
    let mut text = String::from("set -eo pipefail\n");
    for command in commands {
        text.push_str(command);
        text.push('\n');
    }
    text
}

fn redactor_for(job: &JobSpec) -> Redactor {
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

/// The success payload from the output file, or the failure that replaces it.
async fn read_output(path: &std::path::Path, redactor: &Redactor) -> Report {
    // Past this size no amount of surrounding whitespace makes the payload fit.
    const READ_LIMIT: u64 = MAX_OUTPUT_BYTES as u64 + 64 * 1024;
    let content = match tokio::fs::metadata(path).await {
        Err(_) => None,
        Ok(meta) if meta.len() > READ_LIMIT => return report::output_too_large(meta.len() as usize),
        Ok(_) => match tokio::fs::read(path).await {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                return runtime(format!(
                    "could not read $ATTINI_OUTPUT ({}): {e}",
                    path.display()
                ));
            }
        },
    };
    match report::output_payload(content.as_deref(), redactor) {
        Ok(output) => Report::Success { output },
        Err(failure) => failure,
    }
}

async fn write(path: &std::path::Path, content: &[u8]) -> Result<(), Report> {
    tokio::fs::write(path, content)
        .await
        .map_err(|e| runtime(format!("could not write {}: {e}", path.display())))
}

fn runtime(cause: String) -> Report {
    Report::failure(RUNTIME_ERROR, cause)
}
