//! One job from spec to outcome, with no AWS: workspace ([`job_dir`], made ahead by
//! [`job_dirs`]), distribution ([`distribution`]), environment ([`env`]), execution
//! ([`executor`]), output rules and causes ([`outcome`]), secret masking ([`redact`]). Every mode
//! runs jobs through [`Engine::run`]; only where the distribution comes from and where the report
//! goes differ.
//!
//! A job's failure is a value ([`Report::Failure`]), never an error of the engine. The job's
//! directory is removed after its result is returned, on a blocking thread, so that the report
//! does not wait for it; [`Engine::settled`] waits for those removals, for the spare job
//! directories being made and for the distribution cache's spare copies (callers await it before
//! they exit). Cancellation: trip the token passed to [`Engine::run`] and the job's processes
//! are ended (SIGTERM, grace, SIGKILL) and it reports `Runner.Interrupted`; dropping the future
//! instead kills the job's bash (`kill_on_drop`) and removes the job directory.

pub mod distribution;
mod env;
pub use env::withheld;
mod command_spans;
pub mod executor;
mod failure;
pub mod homes;
pub mod job_dir;
pub mod job_dirs;
pub mod names;
pub mod outcome;
mod output_file;
pub mod redact;
pub mod tools;
mod work_dir;
pub mod workspace_caches;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::job::JobSpec;
use distribution::{Distributions, ExtractLimits, Source};
use executor::procs::ProcessTable;
use executor::progress::{Phase, Progress};
use executor::{Execution, LogSink, ScriptRun, Termination};
use failure::EngineFailure;
use job_dir::JobDir;
use job_dirs::JobDirs;
use outcome::{INTERRUPTED_ERROR, Report};
use tracing::Instrument;
use work_dir::WorkDir;

/// What the engine needs to know; parsed from the environment by [`crate::config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Where job directories and the distribution cache live; a fresh subdirectory is made per
    /// runner process. `ATTINI_WORK_DIR`, default `$TMPDIR/attini-runner`.
    pub work_dir: PathBuf,
    /// Default job timeout. `ATTINI_JOB_TIMEOUT`, default 3600 s.
    pub job_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a job is ended. `ATTINI_KILL_GRACE`, default 10 s.
    pub kill_grace: Duration,
    /// Longest a job's workspace may take to prepare (download, unpack, copy), before and
    /// apart from the job timeout. `ATTINI_WORKSPACE_TIMEOUT`, default 900 s.
    pub workspace_timeout: Duration,
    /// Limits for one distribution. `ATTINI_DISTRIBUTION_MAX_BYTES`, default 4 GiB.
    pub limits: ExtractLimits,
    /// Bytes of extracted distributions kept in the cache. `ATTINI_DISTRIBUTION_CACHE_BYTES`,
    /// default 2 GiB.
    pub cache_bytes: u64,
    /// Bytes of tool and workspace caches (jobs' `caches`, `workspaceCaches`) kept between jobs. `ATTINI_TOOL_CACHE_BYTES`,
    /// default 4 GiB; 0: jobs naming caches run with the runner's `HOME`.
    pub tool_cache_bytes: u64,
    /// The program jobs call as `$ATTINI_RUNNER_EXEC`: this binary; `None` when the runner's
    /// environment already sets that variable (the jobs inherit it).
    pub runner_exec: Option<PathBuf>,
    /// The tools of the `cdk` and `sam` kinds. `ATTINI_CDK_CLI`, `ATTINI_SAM_CLI`.
    pub tools: tools::ToolPaths,
    /// The runner's `PATH`, where a job that sets none finds its kind's tool.
    pub base_path: String,
    /// The runner's own AWS secrets ([`redact::RUNNER_SECRETS`]), masked in every job's
    /// output.
    pub runner_secrets: redact::Secrets,
}

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
    /// The job's id; `None`: a new UUID.
    pub job_id: Option<String>,
    /// Told where the job's progress file is, for whoever asks which command runs.
    pub progress: Option<Arc<Progress>>,
    /// Variables set before the job's own (which may override them), e.g. `TRACEPARENT`.
    pub env: Vec<(String, String)>,
    /// Variables of the runner's environment the job does not inherit (`env` may set them):
    /// when it has credentials of its own, the runner's ([`withheld`]).
    pub withheld: Vec<String>,
    /// More values to mask in the job's output and causes (its credential token).
    pub secrets: Vec<String>,
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
    jobs: JobDirs,
    distributions: Distributions,
    /// The homes of jobs that name tool caches.
    homes: homes::Homes,
    processes: ProcessTable,
    /// The jobs' bash, found once on the runner's `PATH` ([`executor::command::find_bash`]).
    bash: Arc<std::ffi::OsStr>,
    /// Removals of finished jobs' directories and spare copies of cached distributions
    /// still under way (the distribution cache spawns its spares here).
    cleanup: TaskTracker,
    /// This runner's folder: held for its lock, removed last (fields drop in order).
    _root: WorkDir,
}

impl Engine {
    /// Claims `<work_dir>/run-<uuid>/` (removing the folders of runners that are gone) with its
    /// job and cache folders, and makes this process the reaper of orphaned job processes;
    /// counts in figures of its own.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        Self::with_figures(config, Arc::default())
    }

    /// As [`Engine::new`], counting in `figures` (the runner's).
    pub fn with_figures(
        config: EngineConfig,
        figures: Arc<crate::metrics::Figures>,
    ) -> Result<Self, EngineError> {
        let err = |path: &PathBuf| {
            let path = path.clone();
            move |source| EngineError { path, source }
        };
        let root = WorkDir::claim(&config.work_dir).map_err(err(&config.work_dir))?;
        let jobs = root.path().join("jobs");
        std::fs::create_dir_all(&jobs).map_err(err(&jobs))?;
        let cache = root.path().join("cache");
        let cleanup = TaskTracker::new();
        let distributions = Distributions::new(
            cache.clone(),
            config.limits,
            config.cache_bytes,
            cleanup.clone(),
            figures,
        )
        .map_err(err(&cache))?;
        executor::procs::become_subreaper();
        let homes = homes::Homes::new(
            root.path().join("homes"),
            config.tool_cache_bytes,
            cleanup.clone(),
        );
        let bash = executor::command::find_bash(&config.base_path);
        Ok(Engine {
            bash,
            config,
            jobs: JobDirs::new(jobs, job_dirs::SPARES, cleanup.clone()),
            distributions,
            homes,
            processes: ProcessTable::default(),
            cleanup,
            _root: root,
        })
    }

    /// Waits until the directories of the jobs that returned so far are removed, and the
    /// distribution cache's spare copies being made are ready.
    pub async fn settled(&self) {
        self.cleanup.close();
        self.cleanup.wait().await;
        self.cleanup.reopen();
    }

    /// Bytes of the work directory's volume free for workspaces now ([`distribution::space`]).
    pub fn disk_room(&self) -> u64 {
        self.distributions.free_room()
    }

    /// Starts putting the tool caches' seed in place ([`homes::Homes::seed`]); with the tool
    /// caches off (`ATTINI_TOOL_CACHE_BYTES` 0) it is ignored, with a warning.
    pub fn seed_tool_caches(&self, fetch: Arc<dyn distribution::Fetch>) {
        if self.config.tool_cache_bytes == 0 {
            tracing::warn!(
                seed = fetch.describe(),
                "ATTINI_TOOL_CACHE_SEED is ignored: the tool caches are off (ATTINI_TOOL_CACHE_BYTES=0)"
            );
            return;
        }
        self.homes.seed(fetch);
    }

    /// SIGKILL to every process of every running job (a second stop signal).
    pub fn kill_all(&self) {
        self.processes.kill_all();
    }

    /// Runs `job` to its end and returns what to report. Output lines go to `sink`. The job's
    /// directory is removed after this returns (see [`Engine::settled`]).
    pub async fn run(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        sink: Arc<dyn LogSink>,
        cancel: &CancellationToken,
    ) -> JobResult {
        let job_id = options
            .job_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let result = match self.jobs.create(&job_id) {
            Ok(dir) => {
                let result = self
                    .prepare_and_execute(job, options, sink, cancel, &job_id, &dir)
                    .await;
                self.jobs.release(dir);
                result
            }
            Err(source) => Err(EngineFailure::JobDir {
                dir: self.jobs.path().to_path_buf(),
                source,
            }
            .into()),
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
        let not_started = || {
            Report::failure(
                INTERRUPTED_ERROR,
                "The runner stopped before the job's first command started, so nothing of it ran. \
                 Retry on Runner.Interrupted to run it on another runner.",
            )
        };
        let phase = |phase| {
            if let Some(progress) = &options.progress {
                progress.enter(phase);
            }
        };
        phase(Phase::Workspace);
        // Preparing the workspace can take a while: a cancel or its bound ends it at once.
        let bound = self.config.workspace_timeout;
        let prepare = self
            .prepare(job, options, job_id, dir)
            .instrument(tracing::debug_span!("workspace"));
        let run = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(not_started()),
            prepared = tokio::time::timeout(bound, prepare) => match prepared {
                Ok(run) => run?,
                Err(_) => return Err(EngineFailure::WorkspaceTimeout(bound.as_secs()).into()),
            },
        };
        if cancel.is_cancelled() {
            return Err(not_started());
        }
        let (mut run, spare) = run;
        let home = self.home_for(job).await?;
        let workspace_caches = workspace_caches::applying(job, &run.cwd, &dir.workspace());
        if let Some(home) = &home {
            if !job.caches.is_empty() {
                // First, so that the job's own HOME wins.
                let path = home.path().display().to_string();
                run.env.insert(0, ("HOME".to_string(), path));
            }
            workspace_caches::restore(home.path(), &run.cwd, &workspace_caches).await;
        }
        if let Some(progress) = &options.progress {
            progress.attach(dir.progress());
        }
        phase(Phase::Commands);
        // The distribution's next spare copy starts as the job's `bash` is spawned, not while
        // the job is prepared: the handoff to the spawn has the CPUs to itself (B1a_own 1.57
        // ms against 2.06, the medians of five runs each, alternating; docs/benchmarks.md).
        if let Some(spare) = spare {
            spare.start();
        }
        let commands = tracing::debug_span!("commands", count = job.commands.len());
        // The end is taken inside the span, so the last command ends within it.
        let (execution, ended) = async {
            let execution = executor::execute(&run, sink, cancel, &self.processes).await;
            (execution, std::time::SystemTime::now())
        }
        .instrument(commands.clone())
        .await;
        let execution = execution.map_err(EngineFailure::from)?;
        phase(Phase::Output);
        command_spans::command_spans(&commands, dir.progress(), ended).await;
        drop(commands);
        if let Some(home) = home {
            if execution.termination == Termination::Exited(0) {
                let caches = &workspace_caches;
                workspace_caches::keep(home.path(), &run.cwd, caches, &self.cleanup).await;
            }
            home.give_back().await;
        }
        let report = match execution.termination {
            Termination::Exited(0) => {
                let _output = tracing::debug_span!("output").entered();
                output_file::read_output(&dir.output(), &run.redactor)
            }
            ref other => outcome::script_failure(
                other,
                &execution.sweep,
                self.config.kill_grace.as_secs(),
                &execution.output.tail,
                options.logs_at.as_deref(),
            ),
        };
        Ok((report, execution))
    }

    /// A home of the pool for a job that names tool or workspace caches (`None` without
    /// caches, or with the tool caches off).
    async fn home_for(&self, job: &JobSpec) -> Result<Option<homes::HomeLease>, EngineFailure> {
        let none = job.caches.is_empty() && job.workspace_caches.is_empty();
        if none || self.config.tool_cache_bytes == 0 {
            if !job.workspace_caches.is_empty() {
                tracing::info!(
                    "the job's workspaceCaches are ignored: the tool caches are off (ATTINI_TOOL_CACHE_BYTES=0)"
                );
            }
            return Ok(None);
        }
        let held: Vec<String> = (job.workspace_caches.iter())
            .map(|c| workspace_caches::entry(Path::new(""), &c.path).join("folder"))
            .map(|folder| folder.display().to_string())
            .collect();
        self.homes
            .take(&job.caches, &held)
            .await
            .map(Some)
            .map_err(|source| EngineFailure::WriteFile {
                path: self.homes.dir().to_path_buf(),
                source,
            })
    }

    /// The workspace (the distribution), the input, output and script files, and how to run
    /// the script; with the distribution cache's next spare copy to start (see
    /// [`Distributions::fill_then_spare`](distribution::Distributions::fill_then_spare)).
    async fn prepare(
        &self,
        job: &JobSpec,
        options: &RunOptions,
        job_id: &str,
        dir: &JobDir,
    ) -> Result<(ScriptRun, Option<distribution::PendingSpare>), EngineFailure> {
        // A kind's missing tool fails the job before its distribution is fetched or copied.
        let job_path = job.environment.get("PATH").cloned();
        let job_path = job_path.unwrap_or_else(|| self.config.base_path.clone());
        let prelude = tools::prelude(job.kind, &self.config.tools, &job_path)?;
        let workspace = dir.workspace();
        let spare = match &options.source {
            Some(source) => {
                let (_, spare) = self
                    .distributions
                    .fill_then_spare(source, &workspace)
                    .await?;
                spare
            }
            None => None,
        };
        let cwd = match &job.working_directory {
            None => options.cwd.clone().unwrap_or_else(|| workspace.clone()),
            Some(sub) => {
                let cwd = workspace.join(sub);
                if !cwd.is_dir() {
                    return Err(EngineFailure::WorkingDirectory(sub.clone()));
                }
                cwd
            }
        };
        let input = serde_json::to_vec(&job.input).unwrap_or_else(|_| b"{}".to_vec());
        let script = env::script_text(prelude.as_deref(), &job.commands, &dir.progress());
        write_all(vec![
            (dir.input(), input),
            (dir.output(), Vec::new()),
            (dir.script(), script.into_bytes()),
        ])?;
        let mut variables = options.env.clone();
        variables.extend(env::variables(job, dir, self.config.runner_exec.as_deref()));
        let run = ScriptRun {
            script: dir.script(),
            cwd,
            env: variables,
            withheld: options.withheld.clone(),
            bash: self.bash.clone(),
            job_id: job_id.to_string(),
            timeout: job.timeout.unwrap_or(self.config.job_timeout),
            grace: self.config.kill_grace,
            redactor: env::redactor_for(
                job,
                options
                    .secrets
                    .iter()
                    .chain(self.config.runner_secrets.iter()),
            ),
        };
        Ok((run, spare))
    }
}

/// Writes the files on the calling thread: three small new files of a job's own directory
/// (its input at most the 256 KiB a message holds) take less than a trip to a blocking
/// thread and back would.
fn write_all(files: Vec<(PathBuf, Vec<u8>)>) -> Result<(), EngineFailure> {
    for (path, content) in files {
        if let Err(source) = std::fs::write(&path, content) {
            return Err(EngineFailure::WriteFile { path, source });
        }
    }
    Ok(())
}
