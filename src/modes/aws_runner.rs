//! The machine both AWS modes run, started once by `serve`, by Attini mode and by the tests:
//! the engine (its jobs killed by a second stop signal), the counters, the observers (ops
//! server, EMF writer), and the worker over the SQS queue answering Step Functions tokens with
//! the mode's [`Policy`]. Each mode keeps only what differs (its policy, its start, what it
//! does after). Before the first receive it checks that it can work ([`AwsRunner::serve`]:
//! room on its volume, valid credentials); a failed check ends it as broken. Cancellation: the shutdown token
//! given to [`AwsRunner::serve`] drains.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Stop;
use super::observers::{self, Observers};
use crate::aws::Clients;
use crate::aws::s3::S3Zip;
use crate::aws::sfn::SfnTokens;
use crate::aws::sqs::SqsQueue;
use crate::config::Settings;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::metrics::Figures;
use crate::worker::locks::LockStore;
use crate::worker::{Exit, Policy, Stats, Worker, WorkerConfig};

/// How long the credentials check is retried through transient errors.
const CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// Room a runner needs on its work volume to start: 16 MiB.
pub const MIN_DISK_ROOM: u64 = 16 * 1024 * 1024;

/// Why the machine could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The work directory cannot be made.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The ops server's address is taken.
    #[error(transparent)]
    Observers(#[from] crate::ops::BindError),
}

/// The engine, the counters and the observers of one runner process.
pub struct AwsRunner {
    /// Runs jobs.
    pub engine: Arc<Engine>,
    /// The counters the observers show.
    pub stats: Arc<Stats>,
    observers: Option<Observers>,
    /// Where the tool caches' seed is (bucket, key), put in place once the start checks pass.
    seed: Option<(String, String)>,
}

impl AwsRunner {
    /// Makes the engine (named to `stop`, so a second signal kills its jobs), the counters and
    /// the observers for the queue at `queue_url`.
    /// Everything counts in `figures`.
    pub async fn start(
        settings: &Settings,
        stop: &Stop,
        queue_url: &str,
        figures: Arc<Figures>,
    ) -> Result<AwsRunner, StartError> {
        let engine = Engine::with_figures(settings.engine.clone(), figures.clone())?;
        let engine = Arc::new(engine);
        stop.guard(engine.clone());
        let stats = Arc::new(Stats {
            figures,
            ..Stats::default()
        });
        let observers = observers::start(settings, stats.clone(), queue_url).await?;
        Ok(AwsRunner {
            engine,
            stats,
            observers: Some(observers),
            seed: settings.tool_cache_seed.clone(),
        })
    }

    /// A machine without observers (tests), counting in `stats`.
    pub fn bare(engine: EngineConfig, stats: Arc<Stats>) -> Result<AwsRunner, EngineError> {
        let figures = stats.figures.clone();
        Ok(AwsRunner {
            engine: Arc::new(Engine::with_figures(engine, figures)?),
            stats,
            observers: None,
            seed: None,
        })
    }

    /// Runs the worker over the queue at `queue_url` with `policy` until `shutdown`, the idle
    /// TTL or a fatal error, then drains.
    pub async fn serve<P: Policy>(
        &self,
        clients: &Clients,
        queue_url: &str,
        worker: WorkerConfig,
        policy: Arc<P>,
        locks: Option<(Arc<dyn LockStore>, Duration)>,
        shutdown: CancellationToken,
    ) -> Exit {
        let figures = self.stats.figures.clone();
        let queue = Arc::new(SqsQueue::new(
            clients.sqs.built(),
            queue_url.to_string(),
            clients.timeouts,
            figures.clone(),
        ));
        let tokens = Arc::new(SfnTokens::new(clients.sfn.built(), figures));
        if let Err(reason) = self.preflight(clients).await {
            tracing::error!(reason, "a start check failed: the runner is broken");
            self.stats.figures.set_broken();
            return Exit::Broken(reason);
        }
        if let Some((bucket, key)) = &self.seed {
            let figures = self.stats.figures.clone();
            let zip = S3Zip::new(clients.s3.built(), bucket, key, figures);
            self.engine.seed_tool_caches(Arc::new(zip));
        }
        let stats = self.stats.clone();
        let mut worker = Worker::new(self.engine.clone(), queue, tokens, worker, stats).await;
        if let Some((store, lease)) = locks {
            worker = worker.with_locks(store, lease);
        }
        worker.run(policy, shutdown).await
    }

    /// The checks before the first receive, beyond what starting the engine checked (its work
    /// directory can be made): the volume has room for a workspace ([`MIN_DISK_ROOM`]) and the
    /// runner's credentials are valid (STS `GetCallerIdentity`; AWS unreachable is not a
    /// failure here, the queue's readiness tells it). The queue is checked by the first
    /// receive (a missing or denied queue stops the runner).
    async fn preflight(&self, clients: &Clients) -> Result<(), String> {
        let sts = aws_sdk_sts::Client::new(&clients.config);
        let who = crate::calls::with_backoff(CHECK_DEADLINE, || async {
            sts.get_caller_identity()
                .send()
                .await
                .map_err(|e| crate::aws::error::classify(&clients.figures, "GetCallerIdentity", e))
        })
        .await;
        match who {
            Ok(_) => {}
            Err(e) if e.class == crate::calls::ErrorClass::Transient => {
                tracing::warn!(error = %e, "start check: STS did not answer; going on (the queue's readiness will tell)");
            }
            Err(e) => {
                return Err(format!(
                    "start check: the runner's AWS credentials do not work ({e}); check the task \
                     role, or the keys or profile the runner was given"
                ));
            }
        }
        let room = self.engine.disk_room();
        if room < MIN_DISK_ROOM {
            return Err(format!(
                "start check: the work directory's volume has {:.1} MiB free for workspaces, \
                 less than the {} MiB a job needs at the least; give the task more ephemeral \
                 storage or point ATTINI_WORK_DIR at a larger volume",
                room as f64 / (1024.0 * 1024.0),
                MIN_DISK_ROOM >> 20
            ));
        }
        Ok(())
    }

    /// Stops the observers (the last EMF set is written).
    pub async fn stop(mut self) {
        if let Some(observers) = self.observers.take() {
            observers.stop().await;
        }
    }
}
