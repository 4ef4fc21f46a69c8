//! Attini mode: `attini-runner <sfnToken> <requiredVersion>`, exactly as the Attini dispatcher
//! starts the runner on ECS (CONTRACT.md 3 to 6).
//!
//! Start: configuration, version check, ECS metadata, the conditional `started` handshake,
//! startup commands; any failure is reported to the start token as `Startup tasks failed` and
//! the process exits 1 (64 for a bad setting). Then the dispatch loop with the Attini filters
//! ([`policy`]) until the idle TTL, an internal shutdown or a signal; then the EC2 hook.
//! Cancellation: SIGTERM/SIGINT stop intake; running jobs are waited for.

pub mod config;
pub mod item;
pub mod policy;
mod startup;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::aws::Clients;
use crate::config::EngineConfig;
use crate::dispatch::{Dispatcher, Exit, Limits};
use crate::ecs::Metadata;
use crate::engine::Engine;
use crate::queue::Queue;
use crate::report::Report;
use crate::reporter;

pub use config::AttiniConfig;

/// Error name of a failed start (CONTRACT.md 4.2, 4.6).
pub const STARTUP_FAILED: &str = "Startup tasks failed";

/// Exit code of a bad setting.
const EXIT_USAGE: u8 = 64;

/// Runs Attini mode to its end; returns the process exit code.
pub async fn run(token: String, required_version: String) -> u8 {
    let lookup = |k: &str| std::env::var(k).ok();
    let clients = Clients::load(lookup("ATTINI_AWS_REGION")).await;
    let fail = |cause: String, code: u8| {
        let clients = clients.clone();
        let token = token.clone();
        async move {
            tracing::error!(cause, "the runner could not start");
            let report = Report::failure(STARTUP_FAILED, cause);
            reporter::send(&clients.sfn, &token, &report).await;
            code
        }
    };

    if let Err(cause) = config::check_version(crate::VERSION, &required_version) {
        return fail(cause, 1).await;
    }
    let settings =
        AttiniConfig::from_lookup(lookup).and_then(|a| Ok((a, EngineConfig::from_env()?)));
    let (config, engine_config) = match settings {
        Ok(settings) => settings,
        Err(e) => return fail(format!("Bad runner configuration: {e}"), EXIT_USAGE).await,
    };
    let engine = match Engine::new(engine_config) {
        Ok(engine) => Arc::new(engine),
        Err(e) => return fail(e.to_string(), 1).await,
    };
    let metadata = Metadata::from_env();
    let own = match startup::start(&config, &clients, metadata.as_ref(), &engine).await {
        Ok(own) => own,
        Err(cause) => {
            let code = fail(cause, 1).await;
            run_hook(&config, &clients).await;
            return code;
        }
    };

    let shutdown = CancellationToken::new();
    crate::signals::stop_on_signal(shutdown.clone());
    let limits = Limits {
        max_jobs: config.max_jobs,
        idle_ttl: Some(config.idle_ttl),
        drain_grace: config.drain_grace,
    };
    let queue = Queue::new(clients.sqs.clone(), config.queue_url.clone());
    let dispatcher = Dispatcher::new(
        engine,
        queue,
        clients.sfn.clone(),
        limits,
        Default::default(),
    )
    .await;
    let policy = Arc::new(policy::AttiniPolicy::new(
        config.clone(),
        clients.clone(),
        metadata,
        own,
    ));
    let exit = dispatcher.run(policy, shutdown).await;
    match &exit {
        Exit::Idle => tracing::info!(
            idle_ttl_s = config.idle_ttl.as_secs(),
            "no jobs for the idle TTL; exiting"
        ),
        Exit::Requested => tracing::info!("stopped by signal"),
        Exit::Stopped(reason) => tracing::warn!(reason, "shutting down"),
    }
    run_hook(&config, &clients).await;
    0
}

async fn run_hook(config: &AttiniConfig, clients: &Clients) {
    if let Some(hook) = config.ec2_hook() {
        hook.run(clients, &config.runner_item(clients)).await;
    }
}
