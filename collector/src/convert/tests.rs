use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::Link;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan, Status};

use super::*;

fn attr(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    attr(key, Value::StringValue(value.to_owned()))
}

fn otlp_span(kind: SpanKind, attributes: Vec<KeyValue>) -> OtlpSpan {
    OtlpSpan {
        trace_id: vec![7; 16],
        span_id: vec![1; 8],
        parent_span_id: vec![],
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        attributes,
        ..OtlpSpan::default()
    }
    .with_kind(kind)
}

trait WithKind {
    fn with_kind(self, kind: SpanKind) -> Self;
}

impl WithKind for OtlpSpan {
    fn with_kind(mut self, kind: SpanKind) -> Self {
        self.kind = match kind {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        };
        self
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<OtlpSpan>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn one(kind: SpanKind, attributes: Vec<KeyValue>) -> Span {
    let req = request(
        vec![text("service.name", "a")],
        vec![otlp_span(kind, attributes)],
    );
    let mut converted = spans_from_request(&req).unwrap();
    assert_eq!(converted.accepted, 1);
    converted.spans.remove(0).spans.remove(0)
}

#[test]
fn resource_attributes_name_the_service() {
    let req = request(
        vec![
            text("service.name", "ledger"),
            text("service.namespace", "bank"),
            text("service.version", "2.1.0"),
            text("service.instance.id", "ledger-7"),
            text("cloud.region", "eu-west-1"),
        ],
        vec![otlp_span(SpanKind::Server, vec![])],
    );
    let groups = spans_from_request(&req).unwrap().spans;
    let service = &groups[0].service;
    assert_eq!(&*service.node_id, "bank/ledger");
    assert_eq!(service.version.as_deref(), Some("2.1.0"));
    assert_eq!(service.instance_id.as_deref(), Some("ledger-7"));
    assert_eq!(service.region.as_deref(), Some("eu-west-1"));
}

#[test]
fn a_resource_without_a_name_is_unknown_service() {
    let req = request(vec![], vec![otlp_span(SpanKind::Server, vec![])]);
    assert_eq!(
        &*spans_from_request(&req).unwrap().spans[0].service.name,
        "unknown_service"
    );
}

#[test]
fn ids_of_the_wrong_length_refuse_the_request_with_the_position() {
    let mut span = otlp_span(SpanKind::Server, vec![]);
    span.trace_id = vec![1; 5];
    let err = spans_from_request(&request(vec![], vec![span])).unwrap_err();
    assert_eq!(
        err,
        "resource_spans[0].scope_spans[0].spans[0]: trace_id has 5 bytes, expected 16"
    );
    let mut span = otlp_span(SpanKind::Server, vec![]);
    span.parent_span_id = vec![1; 4];
    assert!(
        spans_from_request(&request(vec![], vec![span]))
            .unwrap_err()
            .contains("parent_span_id")
    );
    let mut span = otlp_span(SpanKind::Consumer, vec![]);
    span.links = vec![Link {
        trace_id: vec![1; 16],
        span_id: vec![2; 3],
        ..Link::default()
    }];
    assert!(
        spans_from_request(&request(vec![], vec![span]))
            .unwrap_err()
            .contains("links[0].span_id")
    );
}

#[test]
fn unusable_spans_are_rejected_alone() {
    let mut zero = otlp_span(SpanKind::Server, vec![]);
    zero.trace_id = vec![0; 16];
    let mut backwards = otlp_span(SpanKind::Server, vec![]);
    backwards.end_time_unix_nano = 10;
    let good = otlp_span(SpanKind::Server, vec![]);
    let converted = spans_from_request(&request(vec![], vec![zero, backwards, good])).unwrap();
    assert_eq!(converted.accepted, 1);
    assert_eq!(converted.rejected, 2);
    assert_eq!(
        converted.first_rejection.as_deref(),
        Some("resource_spans[0].scope_spans[0].spans[0]: all-zero trace_id or span_id")
    );
}

#[test]
fn errors_come_from_status_http_5xx_and_grpc_codes() {
    let cases = [
        (vec![], None, false),
        (
            vec![attr("http.response.status_code", Value::IntValue(503))],
            None,
            true,
        ),
        (
            vec![attr("http.response.status_code", Value::IntValue(404))],
            None,
            false,
        ),
        (vec![text("http.status_code", "500")], None, true),
        (
            vec![attr("rpc.grpc.status_code", Value::IntValue(14))],
            None,
            true,
        ),
        (
            vec![attr("rpc.grpc.status_code", Value::IntValue(0))],
            None,
            false,
        ),
        (vec![], Some(StatusCode::Error), true),
        (vec![], Some(StatusCode::Ok), false),
    ];
    for (attributes, status, failed) in cases {
        let mut span = otlp_span(SpanKind::Server, attributes.clone());
        span.status = status.map(|code| Status {
            code: code as i32,
            ..Status::default()
        });
        let req = request(vec![], vec![span]);
        let got = spans_from_request(&req).unwrap().spans[0].spans[0].failed;
        assert_eq!(got, failed, "{attributes:?} {status:?}");
    }
}

#[test]
fn caller_spans_carry_hints_of_their_callee() {
    let db = one(
        SpanKind::Client,
        vec![
            text("db.system.name", "redis"),
            text("server.address", "redis-cart"),
        ],
    );
    assert_eq!(
        db.peer,
        Some(PeerHint::Database {
            system: "redis".into(),
            name: "redis-cart".into()
        })
    );
    let old_db = one(SpanKind::Client, vec![text("db.system", "postgresql")]);
    assert_eq!(old_db.peer.unwrap().node_name(), "postgresql");
    let broker = one(SpanKind::Producer, vec![text("messaging.system", "kafka")]);
    assert_eq!(broker.peer.unwrap().node_name(), "kafka");
    let peer = one(
        SpanKind::Client,
        vec![
            text("server.address", "10.0.0.1"),
            text("peer.service", "fx-rates"),
        ],
    );
    assert_eq!(peer.peer, Some(PeerHint::Service("fx-rates".into())));
    let address = one(
        SpanKind::Client,
        vec![text("net.peer.name", "api.example.com")],
    );
    assert_eq!(
        address.peer,
        Some(PeerHint::Address("api.example.com".into()))
    );
    let server = one(SpanKind::Server, vec![text("peer.service", "x")]);
    assert_eq!(server.peer, None, "only callers name a callee");
}

#[test]
fn spec_shaped_json_decodes() {
    let json = include_str!("../../tests/fixtures/trace.json");
    let request: ExportTraceServiceRequest = serde_json::from_str(json).unwrap();
    let groups = spans_from_request(&request).unwrap().spans;
    assert_eq!(groups.len(), 1);
    let span = &groups[0].spans[0];
    assert_eq!(
        span.trace_id.to_string(),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(span.parent_span_id.unwrap().to_string(), "eee19b7ec3c1b173");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.start_unix_nanos, 1_544_712_660_000_000_000);
    assert!(span.failed, "intValue \"503\"");
    assert_eq!(span.peer, Some(PeerHint::Service("ledger".into())));
    assert_eq!(&*groups[0].service.node_id, "bank/payments");
}

#[test]
fn metric_points_are_counted() {
    use opentelemetry_proto::tonic::metrics::v1::{
        Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    };
    let gauge = Metric {
        name: "cpu".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint::default(); 3],
        })),
        ..Metric::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge.clone(), gauge],
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    };
    assert_eq!(metric_points(&req), 6);
}
