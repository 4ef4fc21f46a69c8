//! The ops server: what an operator, ECS and Prometheus ask a running runner, over HTTP on
//! `ATTINI_OPS_ADDR` (default `127.0.0.1:9464`), in `serve` and Attini modes.
//!
//! - `GET /livez`: 200 while the worker loop is alive (its heartbeat is fresh), else 503.
//! - `GET /readyz`: 200 once started, while not draining and the queue answers; else 503.
//! - `GET /metrics`: every figure as OpenMetrics text ([`crate::metrics`]).
//! - `GET /jobs`: the running jobs as JSON ([`running_jobs`]).
//!
//! The probes answer `{"status":"ok"}` or `{"status":"fail","reason":"..."}` and never call
//! AWS. Each request gets [`REQUEST_TIMEOUT`], at most [`MAX_REQUESTS`] run at once, at most
//! [`listener::MAX_CONNECTIONS`] connections are open, each must send its headers within
//! [`listener::HEADER_READ_TIMEOUT`], and requests are traced at DEBUG. [`check`] is the client of `attini-runner healthcheck`.
//! Cancellation: the server stops accepting when its token is cancelled.

pub mod check;
pub mod listener;
pub mod running_jobs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower::limit::ConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::worker::Stats;

/// Longest one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Most requests handled at once; more wait.
pub const MAX_REQUESTS: usize = 16;
/// The OpenMetrics content type.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The ops server could not listen.
#[derive(Debug, thiserror::Error)]
#[error(
    "the ops server cannot listen on {addr}: {source}. Set ATTINI_OPS_ADDR to a free IP:port, or to `off` to run without it"
)]
pub struct BindError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// A bound, not yet serving, ops server.
pub struct OpsServer {
    listener: tokio::net::TcpListener,
}

impl OpsServer {
    /// Listens on `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr) -> Result<Self, BindError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        Ok(OpsServer { listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves `stats` until `stop` is cancelled.
    pub async fn serve(self, stats: Arc<Stats>, stop: CancellationToken) {
        listener::serve(self.listener, router(stats), stop).await;
    }
}

/// The routes and their layers.
pub fn router(stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/jobs", get(running_jobs::list))
        .with_state(stats)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(ConcurrencyLimitLayer::new(MAX_REQUESTS))
        .layer(TraceLayer::new_for_http())
}

fn probe(result: Result<(), crate::worker::health::NotReady>) -> Response {
    match result {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "fail", "reason": reason.to_string()})),
        )
            .into_response(),
    }
}

async fn livez(State(stats): State<Arc<Stats>>) -> Response {
    probe(stats.health.live())
}

async fn readyz(State(stats): State<Arc<Stats>>) -> Response {
    probe(stats.health.ready())
}

async fn metrics(State(stats): State<Arc<Stats>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS)],
        stats.figures.render(),
    )
        .into_response()
}
