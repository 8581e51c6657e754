use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::any_value::Value as Otlp;
use tokio::sync::{Notify, mpsc};

use super::*;

fn attribute(span: &Span, key: &str) -> Option<Otlp> {
    let found = span.attributes.iter().find(|a| a.key == key)?;
    found.value.as_ref()?.value.clone()
}

/// Telemetry on, and the receiving end of its span queue.
fn telemetry() -> (Arc<Telemetry>, mpsc::Receiver<SpanRecord>) {
    let (queue, spans) = mpsc::channel(4);
    let telemetry = Telemetry::new(queue, Arc::default(), Arc::new(Notify::new()), 512);
    (Arc::new(telemetry), spans)
}

#[test]
fn a_finished_span_becomes_the_otlp_span_it_describes() {
    let (telemetry, mut spans) = telemetry();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    );
    headers.insert("tracestate", HeaderValue::from_static("vendor=1"));
    let context = TraceContext::from_headers(&headers);
    let shared: Arc<str> = "region-a".into();
    let mut span = SpanInFlight::start(&telemetry, false, "GET".to_owned(), &context, [7; 8])
        .expect("telemetry is on");
    span.string("http.request.method", "GET");
    span.string("url.path", "/pay".to_owned());
    span.string("mesh.locality", &shared);
    span.int("mesh.retry.attempt", 2);
    span.flag("mesh.tls", true);
    span.http_status(503);
    span.finish();

    let span = spans.try_recv().expect("queued").into_otlp();
    assert_eq!(
        span.trace_id,
        [
            0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80,
            0x31, 0x9c
        ]
    );
    assert_eq!(
        span.parent_span_id,
        [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]
    );
    assert_eq!(span.span_id, [7; 8]);
    assert_eq!(span.trace_state, "vendor=1");
    assert_eq!(span.flags, 0x101);
    assert_eq!(span.kind, SpanKind::Client as i32);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    let text = |s: &str| Some(Otlp::StringValue(s.to_owned()));
    assert_eq!(attribute(&span, "http.request.method"), text("GET"));
    assert_eq!(attribute(&span, "url.path"), text("/pay"));
    assert_eq!(attribute(&span, "mesh.locality"), text("region-a"));
    assert_eq!(
        attribute(&span, "mesh.retry.attempt"),
        Some(Otlp::IntValue(2))
    );
    assert_eq!(attribute(&span, "mesh.tls"), Some(Otlp::BoolValue(true)));
    assert_eq!(
        attribute(&span, "http.response.status_code"),
        Some(Otlp::IntValue(503))
    );
    assert_eq!(attribute(&span, "error.type"), text("503"));
    let status = span.status.expect("an error status");
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "503")
    );
}

#[test]
fn a_failure_names_its_source_and_keeps_its_message() {
    let (telemetry, mut spans) = telemetry();
    let mut span = SpanInFlight::start(
        &telemetry,
        true,
        "GET".to_owned(),
        &TraceContext::start(),
        [1; 8],
    )
    .expect("telemetry is on");
    span.fail(ErrorSource::Upstream, "local app at 127.0.0.1:1: refused");
    span.fail(ErrorSource::Internal, "second failure is ignored");
    span.finish();
    let span = spans.try_recv().expect("queued").into_otlp();
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.kind, SpanKind::Server as i32);
    let source = Some(Otlp::StringValue("upstream".to_owned()));
    assert_eq!(attribute(&span, "mesh.error.source"), source);
    assert_eq!(attribute(&span, "error.type"), source);
    assert_eq!(
        span.status.expect("an error status").message,
        "local app at 127.0.0.1:1: refused"
    );
}
