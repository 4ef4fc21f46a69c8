//! Attini mode: `attini-runner <sfnToken> <requiredVersion>`, exactly as the Attini dispatcher
//! starts the runner on ECS (CONTRACT.md 3 to 6).
//!
//! Start: version check, settings ([`config`]), ECS metadata, the conditional `started`
//! handshake and startup commands ([`startup`]); any failure is reported to the start token as
//! `Startup tasks failed` (`Runner.Interrupted` when a stop signal ended the startup commands)
//! and the process exits 1 (64 for a bad setting). Then the worker with
//! the Attini filters ([`policy`]) until the idle TTL, an internal shutdown or a signal; then
//! the EC2 hook; exit 0. Cancellation: the shared shutdown token stops intake and drains.

pub mod config;
pub mod ownership;
pub mod policy;
mod startup;

use std::sync::Arc;

use super::aws_runner::AwsRunner;
use super::{ExitStatus, Stop};
use crate::aws::Clients;
use crate::aws::ecs::Metadata;
use crate::aws::sfn::SfnTokens;
use crate::config::{ConfigError, Environment, Settings};
use crate::engine::outcome::{INTERRUPTED_ERROR, Report};
use crate::worker::{Exit, answer};

pub use config::AttiniConfig;

/// Error name of a failed start (CONTRACT.md 4.2, 4.6).
pub const STARTUP_FAILED: &str = "Startup tasks failed";

/// Runs Attini mode to its end.
pub async fn run(
    token: String,
    required_version: String,
    settings: Result<Settings, ConfigError>,
    env: &Environment,
    stop: Stop,
) -> ExitStatus {
    // The clients are needed to report even a bad configuration.
    let aws = match &settings {
        Ok(s) => s.aws.clone(),
        Err(_) => crate::config::aws_lenient(env),
    };
    let figures = Arc::<crate::metrics::Figures>::default();
    let clients = Clients::load(&aws, figures.clone()).await;
    let fail = |error: &'static str, cause: String, status: ExitStatus| {
        let (clients, token) = (clients.clone(), token.clone());
        async move {
            tracing::error!(error, cause, "the runner could not start");
            let tokens = SfnTokens::new(clients.sfn.built(), clients.figures.clone());
            let report = Report::failure(error, cause);
            let retries = answer::Retries::default();
            answer::deliver(&tokens, &token, &report, &clients.figures, retries).await;
            status
        }
    };
    if let Err(e) = config::check_version(crate::VERSION, &required_version) {
        return fail(STARTUP_FAILED, e.to_string(), ExitStatus::Failure).await;
    }
    let settings = settings.and_then(|s| Ok((AttiniConfig::from_settings(&s)?, s)));
    let (config, settings) = match settings {
        Ok(both) => both,
        Err(e) => {
            let cause = format!("Bad runner configuration: {e}");
            return fail(STARTUP_FAILED, cause, ExitStatus::Usage).await;
        }
    };
    let runner = match AwsRunner::start(&settings, &stop, &config.queue_url, figures).await {
        Ok(runner) => runner,
        Err(e) => return fail(STARTUP_FAILED, e.to_string(), ExitStatus::Failure).await,
    };
    let metadata = Metadata::from_url(settings.ecs_metadata_uri.clone());
    let own = match startup::start(
        &config,
        &clients,
        metadata.as_ref(),
        &runner.engine,
        &stop.shutdown,
    )
    .await
    {
        Ok(own) => own,
        Err(e) => {
            // Stopped by a signal: retryable, as any interrupted job.
            let error = match e {
                startup::StartError::Interrupted { .. } => INTERRUPTED_ERROR,
                _ => STARTUP_FAILED,
            };
            let status = fail(error, e.to_string(), ExitStatus::Failure).await;
            runner.stop().await;
            run_hook(&config, &clients).await;
            return status;
        }
    };
    let status = serve(&config, &runner, &clients, metadata, own, stop).await;
    runner.stop().await;
    run_hook(&config, &clients).await;
    status
}

/// The worker with the Attini policy, until it ends.
async fn serve(
    config: &AttiniConfig,
    runner: &AwsRunner,
    clients: &Clients,
    metadata: Option<Metadata>,
    own: Option<String>,
    stop: Stop,
) -> ExitStatus {
    let policy = policy::AttiniPolicy::new(config.clone(), clients.clone(), metadata, own);
    let exit = runner
        .serve(
            clients,
            &config.queue_url,
            config.worker,
            Arc::new(policy),
            None,
            stop.shutdown,
        )
        .await;
    match exit {
        Exit::Idle => tracing::info!(
            idle_ttl_s = config.worker.idle_ttl.unwrap_or_default().as_secs(),
            "no jobs for the idle TTL; exiting"
        ),
        Exit::Requested => tracing::info!("stopped by signal"),
        Exit::Stopped(reason) => tracing::warn!(reason, "shutting down"),
        Exit::Broken(reason) => {
            tracing::error!(reason, "broken; exiting with status 3");
            return ExitStatus::Broken;
        }
    }
    ExitStatus::Success
}

async fn run_hook(config: &AttiniConfig, clients: &Clients) {
    if let Some(hook) = config.ec2_hook() {
        hook.run(clients, &config.runner_item(clients)).await;
    }
}
