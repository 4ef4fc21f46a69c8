//! An HTTP proxy between the runner and the emulator that plays an IAM role lacking some
//! permissions: requests for the denied operations are answered with access denied, everything
//! else is forwarded. A rule is an `X-Amz-Target` (e.g. `AmazonSQS.ChangeMessageVisibility`)
//! or, for S3, `PUT <part of the path>`. The emulators do not check IAM; this is how a test
//! shows what a narrow role gets.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

struct Upstream {
    base: String,
    denied: Vec<String>,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A request the proxy forwarded, with the status the emulator gave it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: u16,
}

/// A running proxy; its URL is the AWS endpoint to give the runner.
pub struct DenyingProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl DenyingProxy {
    /// Forwards to `upstream` (`http://host:port`), denying the `X-Amz-Target`s in `denied`.
    pub async fn start(upstream: &str, denied: &[&str]) -> DenyingProxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            denied: denied.iter().map(|d| d.to_string()).collect(),
            http: reqwest::Client::new(),
            seen: seen.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DenyingProxy { url, seen }
    }

    /// The requests forwarded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let s3_denied = up.denied.iter().any(|d| {
        d.strip_prefix("PUT ")
            .is_some_and(|part| request.method() == "PUT" && path.contains(part))
    });
    if s3_denied {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        return Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("content-type", "application/xml")
            .body(Body::from(body))
            .unwrap();
    }
    let target = header(request.headers(), "x-amz-target");
    if up.denied.contains(&target) {
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
        .body(bytes.clone());
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.send().await.unwrap();
    up.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: answer.status().as_u16(),
    });
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
