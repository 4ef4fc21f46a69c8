//! An HTTP proxy between the runner and the emulator that plays an IAM role lacking some
//! permissions: requests for the denied operations (by their `X-Amz-Target`, e.g.
//! `AmazonSQS.ChangeMessageVisibility`) are answered with access denied, everything else is
//! forwarded. The emulators do not check IAM; this is how a test shows what a narrow role gets.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

struct Upstream {
    base: String,
    denied: Vec<String>,
    http: reqwest::Client,
}

/// A running proxy; its URL is the AWS endpoint to give the runner.
pub struct DenyingProxy {
    pub url: String,
}

impl DenyingProxy {
    /// Forwards to `upstream` (`http://host:port`), denying the `X-Amz-Target`s in `denied`.
    pub async fn start(upstream: &str, denied: &[&str]) -> DenyingProxy {
        let state = Arc::new(Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            denied: denied.iter().map(|d| d.to_string()).collect(),
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DenyingProxy { url }
    }
}

async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let target = header(request.headers(), "x-amz-target");
    if up.denied.iter().any(|d| *d == target) {
        let code = if target.starts_with("AmazonSQS.") {
            "AccessDenied"
        } else {
            "AccessDeniedException"
        };
        let body = serde_json::json!({"__type": code, "message": format!("not authorized to perform {target}")});
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amzn-query-error", format!("{code};Sender"))
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outgoing = up
        .http
        .request(parts.method.clone(), format!("{}{path}", up.base))
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.unwrap();
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
