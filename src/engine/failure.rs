//! Why the engine could not run a job's commands, or lost them ([`EngineFailure`]), each saying
//! what went wrong and what to do; rendered to the job's `RuntimeError` cause in one place
//! (`From<EngineFailure> for Report`). Pure; nothing to cancel.

use std::path::PathBuf;

use super::distribution::DistributionError;
use super::executor::SpawnError;
use super::outcome::{RUNTIME_ERROR, Report};
use super::tools::ToolError;

/// What kept the engine from running a job.
#[derive(Debug, thiserror::Error)]
pub enum EngineFailure {
    /// The job's directory could not be made.
    #[error("could not create the job directory in {dir}: {source}")]
    JobDir {
        /// Where job directories go.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kind's tool is missing.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The distribution could not be put into the workspace.
    #[error(transparent)]
    Distribution(#[from] DistributionError),
    /// Preparing the workspace took longer than its bound.
    #[error(
        "preparing the job's workspace (downloading, unpacking and copying its distribution) took \
         longer than {0} s (ATTINI_WORKSPACE_TIMEOUT); nothing of the job ran. Raise the setting \
         for a very large distribution, or retry: S3 may have been slow"
    )]
    WorkspaceTimeout(u64),
    /// `workingDirectory` names no folder of the distribution.
    #[error(
        "workingDirectory {0:?} is not a folder in the distribution; give a path relative to the distribution's root"
    )]
    WorkingDirectory(String),
    /// One of the job's files could not be written.
    #[error("could not write {path}: {source}")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// bash could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

impl EngineFailure {
    /// The error name it is reported with ([`super::names`]).
    pub fn name(&self) -> &'static str {
        use super::names::{DISTRIBUTION, INVALID_JOB, MISSING_TOOL};
        match self {
            EngineFailure::Tool(_) => MISSING_TOOL,
            EngineFailure::Distribution(e) => super::names::of_distribution(e),
            EngineFailure::WorkspaceTimeout(_) => DISTRIBUTION,
            EngineFailure::WorkingDirectory(_)
            | EngineFailure::Spawn(SpawnError::TooBig { .. }) => INVALID_JOB,
            EngineFailure::JobDir { .. }
            | EngineFailure::WriteFile { .. }
            | EngineFailure::Spawn(SpawnError::Other { .. }) => RUNTIME_ERROR,
        }
    }
}

impl From<EngineFailure> for Report {
    fn from(failure: EngineFailure) -> Report {
        Report::failure(failure.name(), failure.to_string())
    }
}
