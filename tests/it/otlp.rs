//! Traces over OTLP: an OTLP/HTTP receiver in the test (an axum route decoding the protobuf
//! `ExportTraceServiceRequest`) and the runner binary serving a real state machine with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at it. Each job is one trace: a root `job` span with
//! the job's id, kind, step and outcome, and under it `receive`, `workspace`, `commands`
//! (with one `command` per command, in order), `output`, `log_upload` and `report`; the
//! resource carries `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`; the job's
//! `TRACEPARENT` names the job's span.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::sigterm;
use crate::world::*;

#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    resources: Arc<Mutex<Vec<Vec<KeyValue>>>>,
}

async fn traces(State(received): State<Received>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    for resource_spans in request.resource_spans {
        if let Some(resource) = resource_spans.resource {
            received.resources.lock().unwrap().push(resource.attributes);
        }
        for scope in resource_spans.scope_spans {
            received.spans.lock().unwrap().extend(scope.spans);
        }
    }
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// Serves `POST /v1/traces` on loopback; returns what it receives and its base URL.
async fn receiver() -> (Received, String) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, url)
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| text(&kv.value))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_is_one_trace_with_its_steps_and_its_traceparent() {
    let world = World::new().await;
    let queue = world.fifo_queue("otlp").await;
    let (received, endpoint) = receiver().await;
    let log = std::fs::File::create(world.tmp.path().join("runner.log")).unwrap();
    let mut runner = serve_binary_to(
        &world,
        &queue,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "runner-under-test"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=it"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
        log,
    );
    let body = json!({
        "stepName": "Traced",
        "commands": ["echo one", "printf '%s' \"$TRACEPARENT\" > $ATTINI_OUTPUT"],
    });
    let machine = world
        .state_machine("otlp", &native_machine(&queue, body))
        .await;
    let mut parents = Vec::new();
    for n in 0..2 {
        let execution = world
            .start(&machine, &format!("otlp-{n}"), &json!({}))
            .await;
        let finished = world.finished(&execution).await;
        assert_eq!(finished.status, "SUCCEEDED", "{finished:?}");
        let output = finished.output.unwrap();
        parents.push(output["result"].as_str().unwrap().to_string());
    }
    sigterm(&runner);
    assert!(runner.wait().await.unwrap().success());
    // The exit flushed every span.

    let spans = received.spans.lock().unwrap().clone();
    let mut traces: BTreeMap<Vec<u8>, Vec<Span>> = BTreeMap::new();
    for span in spans {
        traces.entry(span.trace_id.clone()).or_default().push(span);
    }
    let jobs: Vec<&Span> = traces
        .values()
        .flatten()
        .filter(|s| s.name == "job")
        .collect();
    assert_eq!(jobs.len(), 2, "one job span per job: {traces:#?}");
    for traceparent in &parents {
        let job = jobs
            .iter()
            .find(|j| traceparent.contains(&hex(&j.trace_id)))
            .unwrap_or_else(|| panic!("no job trace for TRACEPARENT {traceparent}"));
        let trace = &traces[&job.trace_id];
        assert!(job.parent_span_id.is_empty(), "the job span is the root");
        assert_eq!(
            traceparent,
            &format!("00-{}-{}-01", hex(&job.trace_id), hex(&job.span_id)),
            "the job's TRACEPARENT names its span"
        );
        assert_eq!(
            attribute(&job.attributes, "kind").as_deref(),
            Some("commands")
        );
        assert_eq!(
            attribute(&job.attributes, "outcome").as_deref(),
            Some("succeeded")
        );
        assert_eq!(
            attribute(&job.attributes, "step").as_deref(),
            Some("Traced")
        );
        assert_eq!(
            attribute(&job.attributes, "job_id").map(|id| id.len()),
            Some(36)
        );
        let child = |name: &str| {
            let found: Vec<&Span> = trace.iter().filter(|s| s.name == name).collect();
            assert_eq!(found.len(), 1, "one {name} span in {trace:#?}");
            found[0]
        };
        for name in [
            "receive",
            "workspace",
            "commands",
            "output",
            "log_upload",
            "report",
        ] {
            assert_eq!(
                child(name).parent_span_id,
                job.span_id,
                "{name} under the job"
            );
        }
        let commands = child("commands");
        let mut each: Vec<&Span> = trace.iter().filter(|s| s.name == "command").collect();
        each.sort_by_key(|s| s.start_time_unix_nano);
        let indexes: Vec<String> = each
            .iter()
            .map(|s| attribute(&s.attributes, "command.index").unwrap())
            .collect();
        assert_eq!(indexes, ["1", "2"], "one span per command, in order");
        for command in &each {
            assert_eq!(command.parent_span_id, commands.span_id);
            assert!(command.start_time_unix_nano >= commands.start_time_unix_nano);
            assert!(command.end_time_unix_nano <= commands.end_time_unix_nano);
        }
        let workspace = child("workspace");
        assert!(
            workspace.end_time_unix_nano <= commands.start_time_unix_nano,
            "workspace before commands"
        );
        assert!(
            commands.end_time_unix_nano <= child("report").start_time_unix_nano,
            "report after commands"
        );
    }
    let resources = received.resources.lock().unwrap().clone();
    assert!(!resources.is_empty());
    for resource in &resources {
        assert_eq!(
            attribute(resource, "service.name").as_deref(),
            Some("runner-under-test")
        );
        assert_eq!(
            attribute(resource, "deployment.environment").as_deref(),
            Some("it")
        );
        assert_eq!(
            attribute(resource, "service.version").as_deref(),
            Some(env!("CARGO_PKG_VERSION"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_jobs_get_no_traceparent() {
    let world = World::new().await;
    let queue = world.fifo_queue("no-otlp").await;
    let log = std::fs::File::create(world.tmp.path().join("runner.log")).unwrap();
    let mut runner = serve_binary_to(&world, &queue, &[], log);
    let body = json!({"commands": ["printf '[%s]' \"${TRACEPARENT-unset}\" > $ATTINI_OUTPUT"]});
    let machine = world
        .state_machine("no-otlp", &native_machine(&queue, body))
        .await;
    let execution = world.start(&machine, "no-otlp-1", &json!({})).await;
    let finished = world.finished(&execution).await;
    assert_eq!(finished.output.unwrap()["result"], "[unset]");
    runner.start_kill().unwrap();
    runner.wait().await.unwrap();
}

/// A collector that takes every request and never answers it.
async fn black_hole() -> (String, CancellationToken, Arc<AtomicUsize>) {
    let hold = CancellationToken::new();
    let held = hold.clone();
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move || {
            let held = held.clone();
            count.fetch_add(1, Ordering::SeqCst);
            async move { held.cancelled().await }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hold, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_never_answers_holds_up_no_job_and_not_the_exit() {
    let world = World::new().await;
    let queue = world.fifo_queue("otlp-hole").await;
    let (endpoint, hold, received) = black_hole().await;
    let log = std::fs::File::create(world.tmp.path().join("runner.log")).unwrap();
    let extra = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    let mut runner = serve_binary_to(&world, &queue, &extra, log);
    let machine = world
        .state_machine(
            "otlp-hole",
            &native_machine(&queue, json!({"commands": ["true"]})),
        )
        .await;
    for n in 0..3 {
        let execution = world
            .start(&machine, &format!("hole-{n}"), &json!({}))
            .await;
        assert_eq!(world.finished(&execution).await.status, "SUCCEEDED");
    }
    // The runner's exports reach the collector, which holds them unanswered.
    for _ in 0..300 {
        if received.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        received.load(Ordering::SeqCst) > 0,
        "no export reached the collector"
    );
    sigterm(&runner);
    // The export and the flush at exit are bounded: the runner exits on its own while the
    // collector still holds every request.
    let exited = tokio::time::timeout(std::time::Duration::from_secs(90), runner.wait())
        .await
        .expect("the runner waited for a collector that never answers");
    assert!(exited.unwrap().success());
    hold.cancel();
}
