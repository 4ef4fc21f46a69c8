//! Trace context of a job: the W3C `TRACEPARENT` and `TRACESTATE` of the job's span, given to
//! its commands so that an instrumented build or test links its spans under the job.
//! Nothing when no exporter is configured (the span has no valid context). Pure; nothing to
//! cancel.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `TRACEPARENT` (and `TRACESTATE` when not empty) naming `span`, for a job's environment.
pub fn job_variables(span: &tracing::Span) -> Vec<(String, String)> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let mut variables = Vec::new();
    for (key, name) in [("traceparent", "TRACEPARENT"), ("tracestate", "TRACESTATE")] {
        if let Some(value) = carrier.remove(key).filter(|v| !v.is_empty()) {
            variables.push((name.to_string(), value));
        }
    }
    variables
}
