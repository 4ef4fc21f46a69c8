//! `GET /jobs`: the running jobs as JSON, from the worker's board:
//! `{"jobs": [{"messageId", "jobId", "execution", "kind", "step", "started", "phase",
//! "command", "commands"}]}`. `started` is RFC 3339 (UTC); `phase` is where the job is
//! (`admission`, `workspace`, `commands`, `output`, `report`); `command` is the 1-based index
//! of the command running now (`null` before the first), `commands` how many there are. Only names
//! and times: no variable, input, command text or output of a job. Nothing to cancel.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::worker::Stats;
use crate::worker::board::RunningJob;

/// One running job in the answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    message_id: String,
    job_id: String,
    execution: Option<String>,
    kind: &'static str,
    step: Option<String>,
    started: String,
    phase: Option<&'static str>,
    command: Option<usize>,
    commands: usize,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Jobs {
    jobs: Vec<JobView>,
}

fn view(job: &RunningJob) -> JobView {
    JobView {
        message_id: job.message_id.clone(),
        job_id: job.job_id.clone(),
        execution: job.execution.clone(),
        kind: job.kind,
        step: job.step.clone(),
        started: OffsetDateTime::from(job.started)
            .format(&Rfc3339)
            .unwrap_or_default(),
        phase: job.progress.phase().map(|p| p.label()),
        command: job.progress.current(),
        commands: job.commands,
    }
}

/// The handler.
pub async fn list(State(stats): State<Arc<Stats>>) -> Json<Jobs> {
    let board = stats.board.jobs();
    // Reading the progress files touches the disk.
    let jobs = tokio::task::spawn_blocking(move || board.iter().map(|j| view(j)).collect())
        .await
        .unwrap_or_default();
    Json(Jobs { jobs })
}
