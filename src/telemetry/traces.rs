//! OpenTelemetry traces over OTLP (http/protobuf), only when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: otherwise nothing is built and no
//! exporter thread starts. Spans are queued in memory and sent by the SDK's batch processor
//! on its own thread (a full queue drops spans; a job never waits for an export). The
//! resource has `service.name` (from `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`, else
//! `attini-runner`), `service.version`, and on ECS the task's cluster, ARN, family, revision,
//! launch type and zone from the task metadata. The standard `OTEL_EXPORTER_OTLP_*` and
//! `OTEL_BSP_*` variables apply. Cancellation: dropping the [`TraceGuard`] flushes within
//! [`FLUSH_BOUND`].

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;

/// Longest the exit waits for the last spans to be sent.
pub const FLUSH_BOUND: Duration = Duration::from_secs(5);
/// Longest one export request may take.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the ECS task metadata is waited for at start.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// Flushes and stops the exporter when dropped.
pub struct TraceGuard(SdkTracerProvider);

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown_with_timeout(FLUSH_BOUND) {
            eprintln!("attini-runner: the last trace spans were not all sent: {e}");
        }
    }
}

/// Why the exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to OTEL_EXPORTER_OTLP_ENDPOINT: {0}")]
pub struct TraceError(String);

/// True when an OTLP endpoint is configured.
pub fn configured(lookup: &impl Fn(&str) -> Option<String>) -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|k| lookup(k).is_some_and(|v| !v.trim().is_empty()))
}

/// The tracer provider with its exporter; `None` when no endpoint is configured. Call before
/// the async runtime starts (it reads the ECS metadata with a blocking request).
pub fn provider(
    env: &crate::config::Environment,
) -> Result<Option<(SdkTracerProvider, TraceGuard)>, TraceError> {
    let lookup = |k: &str| env.get(k).map(str::to_string);
    if !configured(&lookup) {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TraceError(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(&lookup))
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(Some((provider.clone(), TraceGuard(provider))))
}

fn resource(lookup: &impl Fn(&str) -> Option<String>) -> Resource {
    let mut builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", crate::VERSION))
        .with_attributes(ecs_attributes(lookup));
    let named = lookup("OTEL_SERVICE_NAME").is_some_and(|v| !v.is_empty())
        || lookup("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|v| v.contains("service.name="));
    if !named {
        builder = builder.with_service_name("attini-runner");
    }
    builder.build()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskMetadata {
    cluster: Option<String>,
    #[serde(rename = "TaskARN")]
    task_arn: Option<String>,
    family: Option<String>,
    revision: Option<String>,
    launch_type: Option<String>,
    availability_zone: Option<String>,
}

/// Resource attributes of the ECS task (none outside ECS or when its metadata cannot be
/// read within [`METADATA_TIMEOUT`]).
fn ecs_attributes(lookup: &impl Fn(&str) -> Option<String>) -> Vec<KeyValue> {
    let Some(base) = lookup("ECS_CONTAINER_METADATA_URI_V4").filter(|v| !v.is_empty()) else {
        return Vec::new();
    };
    let task = reqwest::blocking::Client::builder()
        .timeout(METADATA_TIMEOUT)
        .no_proxy()
        .build()
        .and_then(|c| c.get(format!("{base}/task")).send())
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.json::<TaskMetadata>());
    match task {
        Ok(task) => task_attributes(task),
        Err(e) => {
            eprintln!("attini-runner: traces carry no ECS task attributes: {e}");
            Vec::new()
        }
    }
}

fn task_attributes(task: TaskMetadata) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("cloud.provider", "aws"),
        KeyValue::new("cloud.platform", "aws_ecs"),
    ];
    let mut add = |key: &'static str, value: Option<String>| {
        if let Some(value) = value {
            attributes.push(KeyValue::new(key, value));
        }
    };
    add("aws.ecs.cluster.arn", task.cluster);
    add("aws.ecs.task.arn", task.task_arn);
    add("aws.ecs.task.family", task.family);
    add("aws.ecs.task.revision", task.revision);
    add(
        "aws.ecs.launchtype",
        task.launch_type.map(|t| t.to_ascii_lowercase()),
    );
    add("cloud.availability_zone", task.availability_zone);
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_metadata_becomes_resource_attributes() {
        let task: TaskMetadata = serde_json::from_str(
            r#"{"Cluster": "arn:aws:ecs:eu-west-1:111122223333:cluster/c", "TaskARN": "arn:t",
                "Family": "runner", "Revision": "7", "LaunchType": "FARGATE",
                "AvailabilityZone": "eu-west-1a", "Containers": []}"#,
        )
        .unwrap();
        let attributes = task_attributes(task);
        let get = |k: &str| {
            attributes
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(get("aws.ecs.task.arn").as_deref(), Some("arn:t"));
        assert_eq!(get("aws.ecs.launchtype").as_deref(), Some("fargate"));
        assert_eq!(get("aws.ecs.task.revision").as_deref(), Some("7"));
        assert_eq!(get("cloud.platform").as_deref(), Some("aws_ecs"));
    }

    #[test]
    fn the_task_metadata_endpoint_is_read_for_the_attributes() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v4/abc", listener.local_addr().unwrap());
        // One answer, as the ECS agent gives it; the request's first line is sent back.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let n = stream.read(&mut request).unwrap();
            let body = r#"{"TaskARN": "arn:t", "LaunchType": "FARGATE"}"#;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close";
            write!(
                stream,
                "{head}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let request = String::from_utf8_lossy(&request[..n]).to_string();
            request.lines().next().unwrap_or_default().to_string()
        });
        let attributes =
            ecs_attributes(&|k| (k == "ECS_CONTAINER_METADATA_URI_V4").then(|| base.clone()));
        let task = attributes
            .iter()
            .find(|kv| kv.key.as_str() == "aws.ecs.task.arn")
            .map(|kv| kv.value.to_string());
        assert_eq!(task.as_deref(), Some("arn:t"));
        assert_eq!(server.join().unwrap(), "GET /v4/abc/task HTTP/1.1");
        // Outside ECS (no variable, or a blank one) nothing is asked.
        assert!(ecs_attributes(&|_| None).is_empty());
        assert!(ecs_attributes(&|_| Some(String::new())).is_empty());
    }

    #[test]
    fn the_service_is_named_attini_runner_unless_the_user_named_it() {
        let name = |lookup: &dyn Fn(&str) -> Option<String>| {
            resource(&lookup)
                .get(&opentelemetry::Key::new("service.name"))
                .map(|v| v.to_string())
        };
        assert_eq!(name(&|_| None).as_deref(), Some("attini-runner"));
        let named = |k: &str| (k == "OTEL_SERVICE_NAME").then(|| "deployments".to_string());
        assert_ne!(name(&named).as_deref(), Some("attini-runner"));
        let in_attributes = |k: &str| {
            (k == "OTEL_RESOURCE_ATTRIBUTES").then(|| "team=a,service.name=deployments".to_string())
        };
        assert_ne!(name(&in_attributes).as_deref(), Some("attini-runner"));
    }

    #[test]
    fn no_exporter_is_built_without_an_endpoint() {
        let env = crate::config::Environment::of([("OTEL_SERVICE_NAME", "x")]);
        assert!(provider(&env).unwrap().is_none());
    }

    #[test]
    fn only_an_endpoint_turns_traces_on() {
        assert!(!configured(&|_| None));
        assert!(!configured(&|_| Some(" ".into())));
        assert!(configured(
            &|k| (k == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").then(|| "http://x".into())
        ));
    }
}
