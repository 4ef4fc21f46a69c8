//! The loopback credential endpoint jobs read their role's credentials from, as the AWS SDKs
//! and CLI do on ECS: `AWS_CONTAINER_CREDENTIALS_FULL_URI` is this server's URL and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` a token of the job's own. A token is known only to its
//! job and works only while the job is registered ([`Endpoint::register`] returns a guard that
//! revokes it). Bound to 127.0.0.1 on a free port when the first job with a role starts; it
//! lives as long as the runner's runtime. A request cancelled midway changes nothing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::session::RoleSession;

type Registry = Arc<Mutex<HashMap<String, Arc<RoleSession>>>>;

/// The running endpoint.
pub struct Endpoint {
    addr: SocketAddr,
    sessions: Registry,
}

/// Revokes a job's token when dropped.
pub struct Registration {
    token: String,
    sessions: Registry,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.sessions).remove(&self.token);
    }
}

impl Endpoint {
    /// Binds 127.0.0.1 on a free port and serves there on a task of its own.
    pub async fn start() -> std::io::Result<Endpoint> {
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let sessions: Registry = Arc::default();
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(sessions.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "the job credential endpoint stopped");
            }
        });
        tracing::debug!(%addr, "job credential endpoint listening");
        Ok(Endpoint { addr, sessions })
    }

    /// The URL jobs are given as `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn url(&self) -> String {
        format!("http://{}/credentials", self.addr)
    }

    /// Registers `session` under a new random token; the token and its guard.
    pub fn register(&self, session: Arc<RoleSession>) -> (String, Registration) {
        // Two version-4 UUIDs: 244 random bits from the system's generator.
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        lock(&self.sessions).insert(token.clone(), session);
        let guard = Registration {
            token: token.clone(),
            sessions: self.sessions.clone(),
        };
        (token, guard)
    }
}

/// The registry stays usable after a panic elsewhere: it holds no invariant a panic breaks.
fn lock(
    sessions: &Mutex<HashMap<String, Arc<RoleSession>>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Arc<RoleSession>>> {
    sessions.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(State(sessions): State<Registry>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let session = lock(&sessions).get(token).cloned();
    let Some(session) = session else {
        return (
            StatusCode::FORBIDDEN,
            "unknown or expired job token: credentials are only served to a running job\n",
        )
            .into_response();
    };
    match session.credentials().await {
        Ok(issued) => {
            let expiration = time::OffsetDateTime::from(issued.expiration)
                .replace_nanosecond(0)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            axum::Json(serde_json::json!({
                "AccessKeyId": issued.access_key_id,
                "SecretAccessKey": issued.secret_access_key,
                "Token": issued.session_token,
                "Expiration": expiration,
                "RoleArn": session.role(),
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not refresh a job's role credentials");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}
