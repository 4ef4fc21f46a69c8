//! Standalone mode (`attini-runner serve`): the worker without the Attini framework. Any state
//! machine sends native jobs with `sqs:sendMessage.waitForTaskToken`; many runners may share
//! one queue. Cancellation: SIGTERM/SIGINT (or the token given to [`serve`]) stops intake and
//! waits for running jobs.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::admit;
use crate::aws::Clients;
use crate::config::{self, ConfigError, EngineConfig};
use crate::dispatch::{Admission, Dispatcher, Exit, Limits, Policy, Stats};
use crate::engine::Engine;
use crate::queue::{Message, Queue};

/// Settings of `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Queue URL (`--queue-url` or `ATTINI_QUEUE_URL`).
    pub queue_url: String,
    /// Jobs at once (`--max-jobs` or `ATTINI_MAX_CONCURRENT_JOBS`, default 5, 1 to 100).
    pub max_jobs: usize,
    /// Exit after this long without jobs (`--idle-ttl` or `ATTINI_RUNNER_IDLE_TTL`); default never.
    pub idle_ttl: Option<Duration>,
    /// Time running jobs get after a stop (`ATTINI_DRAIN_GRACE`, default 90 s).
    pub drain_grace: Duration,
}

impl ServeConfig {
    /// Flags first, then the environment through `lookup`.
    pub fn resolve(
        queue_url: Option<String>,
        max_jobs: Option<usize>,
        idle_ttl: Option<u64>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let queue_url = queue_url
            .or_else(|| lookup("ATTINI_QUEUE_URL"))
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| ConfigError {
                key: "ATTINI_QUEUE_URL".into(),
                value: String::new(),
                expected: "the URL of the job queue (or pass --queue-url)".into(),
            })?;
        let max_jobs = match max_jobs {
            Some(n) => n,
            None => config::number(&lookup, "ATTINI_MAX_CONCURRENT_JOBS", 5, 1, 100)? as usize,
        };
        let idle_ttl = match idle_ttl {
            Some(s) => Some(Duration::from_secs(s)),
            None => match lookup("ATTINI_RUNNER_IDLE_TTL").filter(|v| !v.is_empty()) {
                Some(_) => Some(config::seconds(&lookup, "ATTINI_RUNNER_IDLE_TTL", 3600)?),
                None => None,
            },
        };
        Ok(ServeConfig {
            queue_url,
            max_jobs,
            idle_ttl,
            drain_grace: Limits::drain_grace(&lookup)?,
        })
    }
}

/// Native jobs: parse, resolve the distribution, run.
pub struct NativePolicy {
    s3: aws_sdk_s3::Client,
}

impl Policy for NativePolicy {
    async fn admit(&self, message: &Message) -> Admission {
        match admit::parse(message) {
            Ok((job, token)) => admit::admit(job, token, &self.s3, None).await,
            Err(refusal) => refusal,
        }
    }
}

/// Runs standalone mode until `shutdown`, an idle TTL or a fatal queue error.
pub async fn serve(
    config: ServeConfig,
    engine_config: EngineConfig,
    clients: Clients,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
) -> Result<Exit, crate::engine::EngineError> {
    let engine = Arc::new(Engine::new(engine_config)?);
    tracing::info!(
        queue = config.queue_url,
        max_jobs = config.max_jobs,
        "serving jobs"
    );
    let limits = Limits {
        max_jobs: config.max_jobs,
        idle_ttl: config.idle_ttl,
        drain_grace: config.drain_grace,
    };
    let queue = Queue::new(clients.sqs.clone(), config.queue_url.clone());
    let dispatcher = Dispatcher::new(engine, queue, clients.sfn.clone(), limits, stats).await;
    let policy = Arc::new(NativePolicy {
        s3: clients.s3.clone(),
    });
    let exit = dispatcher.run(policy, shutdown).await;
    tracing::info!(?exit, "stopped serving");
    Ok(exit)
}
