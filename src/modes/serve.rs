//! Standalone mode (`attini-runner serve`): the worker without the Attini framework. Any state
//! machine sends native jobs with `sqs:sendMessage.waitForTaskToken`; many runners may share
//! one queue. On ECS (`ECS_AGENT_URI` set) the task is protected from scale-in while jobs run.
//! Exit 0 when stopped by a signal or the idle TTL, 1 when the queue cannot be
//! used, 64 on a bad setting. Cancellation: the shared shutdown token stops intake and drains.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::admission::{self, Admitter};
use super::aws_runner::{AwsRunner, StartError};
use super::{ExitStatus, Stop};
use crate::aws::Clients;
use crate::aws::ecs_agent::EcsAgent;
use crate::config::{self, ConfigError, Settings};
use crate::credentials::JobRoleConfig;
use crate::engine::EngineError;
use crate::metrics::Figures;
use crate::worker::locks::LockStore;
use crate::worker::protection::{ProtectionConfig, keep_protected};
use crate::worker::{self, Admission, Exit, Message, Policy, Stats, WorkerConfig};

/// The flags of `serve`; each overrides its setting.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    /// `--queue-url` (else `ATTINI_QUEUE_URL`).
    pub queue_url: Option<String>,
    /// `--max-jobs` (else `ATTINI_MAX_CONCURRENT_JOBS`).
    pub max_jobs: Option<usize>,
    /// `--idle-ttl` in seconds (else `ATTINI_RUNNER_IDLE_TTL`; unset: never).
    pub idle_ttl: Option<Duration>,
}

/// What `serve` runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The job queue's URL.
    pub queue_url: String,
    /// The loop's settings.
    pub worker: WorkerConfig,
    /// The ECS agent (`ECS_AGENT_URI`) to ask for scale-in protection while jobs run; `None`
    /// outside ECS.
    pub ecs_agent_uri: Option<String>,
    /// How long one protection lasts.
    pub protection: ProtectionConfig,
    /// Job roles.
    pub job_roles: JobRoleConfig,
    /// Refuse literal `secretEnvironment` values.
    pub refuse_literal_secrets: bool,
    /// The lock table and the lease of its entries; `None`: jobs with a `lock` are refused.
    pub locks: Option<(String, Duration)>,
}

impl ServeConfig {
    /// Flags first, then the settings.
    pub fn resolve(args: ServeArgs, settings: &Settings) -> Result<Self, ConfigError> {
        let queue_url = args.queue_url.or_else(|| settings.queue_url.clone());
        let queue_url = config::required(
            &queue_url.filter(|u| !u.trim().is_empty()),
            &config::QUEUE_URL,
            "the URL of the job queue (or pass --queue-url)",
        )?;
        let mut worker = settings.worker;
        worker.max_jobs = args.max_jobs.unwrap_or(worker.max_jobs);
        worker.idle_ttl = args.idle_ttl.or(worker.idle_ttl);
        Ok(ServeConfig {
            queue_url,
            worker,
            ecs_agent_uri: settings.ecs_agent_uri.clone(),
            protection: settings.task_protection,
            job_roles: settings.job_roles.clone(),
            refuse_literal_secrets: settings.refuse_literal_secrets,
            locks: settings
                .lock_table
                .clone()
                .map(|table| (table, settings.lock_lease)),
        })
    }
}

/// Native jobs: parse, resolve the distribution, run.
pub struct NativePolicy {
    admitter: Admitter,
}

impl Policy for NativePolicy {
    async fn admit(&self, message: &Message) -> Admission {
        match worker::admit::parse_message(message) {
            Ok((job, token)) => admission::resolve(job, token, &self.admitter, None).await,
            Err(refusal) => refusal,
        }
    }
}

/// `serve` as the binary runs it.
pub async fn run(args: ServeArgs, settings: Settings, stop: Stop) -> ExitStatus {
    let config = match ServeConfig::resolve(args, &settings) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            eprintln!("attini-runner: {e}");
            return ExitStatus::Usage;
        }
    };
    let figures = Arc::<Figures>::default();
    let runner = match AwsRunner::start(&settings, &stop, &config.queue_url, figures.clone()).await
    {
        Ok(runner) => runner,
        Err(StartError::Engine(e)) => {
            eprintln!("attini-runner: {e}");
            return ExitStatus::Usage;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("attini-runner: {e}");
            return ExitStatus::Failure;
        }
    };
    let clients = Clients::load(&settings.aws, figures).await;
    let exit = serve_with(config, &runner, clients, stop.shutdown).await;
    runner.stop().await;
    match exit {
        Exit::Stopped(reason) => {
            tracing::error!(reason, "stopped");
            ExitStatus::Failure
        }
        Exit::Broken(reason) => {
            tracing::error!(reason, "broken; exiting with status 3");
            ExitStatus::Broken
        }
        Exit::Requested | Exit::Idle => ExitStatus::Success,
    }
}

/// Runs standalone mode until `shutdown`, an idle TTL or a fatal queue error (for tests:
/// builds its own engine, counting in `stats`).
pub async fn serve(
    config: ServeConfig,
    engine: crate::engine::EngineConfig,
    clients: Clients,
    shutdown: CancellationToken,
    stats: Arc<Stats>,
) -> Result<Exit, EngineError> {
    let runner = AwsRunner::bare(engine, stats)?;
    Ok(serve_with(config, &runner, clients, shutdown).await)
}

async fn serve_with(
    config: ServeConfig,
    runner: &AwsRunner,
    clients: Clients,
    shutdown: CancellationToken,
) -> Exit {
    tracing::info!(
        queue = config.queue_url,
        max_jobs = config.worker.max_jobs,
        "serving jobs"
    );
    let admitter = Admitter::new(
        &clients,
        config.job_roles,
        config.refuse_literal_secrets,
        &config.queue_url,
    );
    let protection = config.ecs_agent_uri.map(|uri| {
        tracing::info!(
            minutes = config.protection.minutes,
            "ECS task scale-in protection while jobs run"
        );
        let stop = CancellationToken::new();
        let agent = Arc::new(EcsAgent::new(&uri));
        let running = runner.stats.figures.slots.watch();
        let task = tokio::spawn(keep_protected(
            agent,
            config.protection,
            running,
            stop.clone(),
        ));
        (stop, task)
    });
    let policy = Arc::new(NativePolicy { admitter });
    let locks = config.locks.map(|(table, lease)| {
        tracing::info!(
            table,
            lease_s = lease.as_secs(),
            "locks across runners in the lock table"
        );
        let store = crate::aws::lock_table::LockTable {
            dynamodb: clients.dynamodb.built(),
            table,
            figures: runner.stats.figures.clone(),
        };
        (Arc::new(store) as Arc<dyn LockStore>, lease)
    });
    let exit = runner
        .serve(
            &clients,
            &config.queue_url,
            config.worker,
            policy,
            locks,
            shutdown,
        )
        .await;
    // Every job has ended: let the protection go.
    if let Some((stop, task)) = protection {
        stop.cancel();
        let _ = task.await;
    }
    tracing::info!(?exit, "stopped serving");
    exit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(queue: Option<&str>) -> Settings {
        let queue = queue.map(str::to_string);
        Settings::from_lookup(|name| (name == config::QUEUE_URL.name).then(|| queue.clone())?)
            .unwrap()
    }

    #[test]
    fn the_flag_wins_over_the_setting_and_a_blank_url_is_refused() {
        let flag = ServeArgs {
            queue_url: Some("https://sqs.example/flag".into()),
            max_jobs: Some(3),
            ..ServeArgs::default()
        };
        let config =
            ServeConfig::resolve(flag, &settings(Some("https://sqs.example/env"))).unwrap();
        assert_eq!(config.queue_url, "https://sqs.example/flag");
        assert_eq!(config.worker.max_jobs, 3);
        let config = ServeConfig::resolve(
            ServeArgs::default(),
            &settings(Some("https://sqs.example/env")),
        )
        .unwrap();
        assert_eq!(config.queue_url, "https://sqs.example/env");
        for blank in [None, Some(""), Some("  ")] {
            let err = ServeConfig::resolve(ServeArgs::default(), &settings(blank)).unwrap_err();
            assert!(err.to_string().contains("--queue-url"), "{blank:?}: {err}");
        }
    }
}
