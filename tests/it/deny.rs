//! An HTTP proxy between the runner and the emulator that plays what real AWS does and the
//! emulators do not: an IAM role lacking some permissions (requests for the denied operations
//! are answered with access denied; an operation is an `X-Amz-Target`, e.g.
//! `AmazonSQS.ChangeMessageVisibility`, or, for S3, `PUT`, `GET` or `HEAD <part of the path>`), and faults a test
//! adds while the runner runs ([`Fault`]: a slow answer, no answer at all, an AWS error), each
//! for a number of requests. Everything else is forwarded and recorded ([`DenyingProxy::seen`]).

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
    faults: Arc<Mutex<Vec<(String, Fault, u32)>>>,
}

/// What the proxy does to a request instead of forwarding it at once.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forwards it after this long.
    Delay(std::time::Duration),
    /// Accepts it and never answers (a half-open connection).
    Hang,
    /// Answers this HTTP status with this AWS error code (JSON protocols).
    Error(u16, &'static str),
    /// Forwards it, then sends only this many bytes of the answer's body and drops the
    /// connection (a download that breaks off).
    CutAfter(usize),
}

/// A request the proxy forwarded, with the status the emulator gave it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: String,
    pub method: String,
    pub path: String,
    pub body: String,
    pub status: u16,
}

/// A running proxy; its URL is the AWS endpoint to give the runner.
pub struct DenyingProxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    faults: Arc<Mutex<Vec<(String, Fault, u32)>>>,
}

impl DenyingProxy {
    /// Forwards to `upstream` (`http://host:port`), denying the `X-Amz-Target`s in `denied`.
    pub async fn start(upstream: &str, denied: &[&str]) -> DenyingProxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Upstream {
            base: upstream.trim_end_matches('/').to_string(),
            denied: denied.iter().map(|d| d.to_string()).collect(),
            http: reqwest::Client::new(),
            seen: seen.clone(),
            faults: faults.clone(),
        });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        DenyingProxy { url, seen, faults }
    }

    /// Applies `fault` to the next `times` requests for `target` (an `X-Amz-Target`, or for
    /// S3 `GET <part of the path>`).
    pub fn fault(&self, target: &str, fault: Fault, times: u32) {
        self.faults
            .lock()
            .unwrap()
            .push((target.to_string(), fault, times));
    }

    /// How many forwarded or faulted requests had `target`.
    pub fn count(&self, target: &str) -> usize {
        self.seen().iter().filter(|r| r.target == target).count()
    }

    /// The requests forwarded so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn forward(State(up): State<Arc<Upstream>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let s3_denied = up.denied.iter().any(|d| {
        d.split_once(' ').is_some_and(|(method, part)| {
            ["PUT", "GET", "HEAD"].contains(&method)
                && request.method() == method
                && path.contains(part)
        })
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
    let fault_key = if target.is_empty() {
        format!("{} {path}", request.method())
    } else {
        target.clone()
    };
    let mut cut = None;
    if let Some(fault) = take_fault(&up, &fault_key) {
        record(&up, &target, &request, 0);
        match fault {
            Fault::Delay(wait) => tokio::time::sleep(wait).await,
            Fault::Hang => std::future::pending::<()>().await,
            Fault::Error(status, code) => return aws_error(status, code, &target),
            Fault::CutAfter(bytes) => cut = Some(bytes),
        }
    }
    if up.denied.contains(&target) {
        let code = if target.starts_with("AmazonSQS.") {
            "AccessDenied"
        } else {
            "AccessDeniedException"
        };
        return aws_error(400, code, &target);
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
        target: target.clone(),
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
    let body = answer.bytes().await.unwrap();
    let body = match cut {
        None => Body::from(body),
        Some(n) => {
            let part = body.slice(..n.min(body.len()));
            let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> =
                vec![Ok(part), Err(std::io::Error::other("cut by the test"))];
            Body::from_stream(futures::stream::iter(chunks))
        }
    };
    response.body(body).unwrap()
}

/// Takes one use of the first fault for `key` (a target, or `METHOD /path` for S3), if any is
/// left.
fn take_fault(up: &Upstream, key: &str) -> Option<Fault> {
    let mut faults = up.faults.lock().unwrap();
    let matches = |t: &str| match t.split_once(' ') {
        Some((method, part)) => key.starts_with(&format!("{method} /")) && key.contains(part),
        None => t == key,
    };
    let (_, fault, left) = faults
        .iter_mut()
        .find(|(t, _, left)| matches(t) && *left > 0)?;
    *left -= 1;
    Some(fault.clone())
}

/// Records a faulted request (status 0: the emulator never saw it).
fn record(up: &Upstream, target: &str, request: &Request, status: u16) {
    up.seen.lock().unwrap().push(Seen {
        target: target.to_string(),
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        body: String::new(),
        status,
    });
}

/// An AWS JSON-protocol error answer.
fn aws_error(status: u16, code: &str, target: &str) -> Response {
    let body = serde_json::json!({"__type": code, "message": format!("{code} for {target} (injected by the test)")});
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-query-error", format!("{code};Sender"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}
