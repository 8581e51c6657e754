//! Simulation records as OTLP: spans with semantic-convention attributes
//! under each instance's resource, and metrics per instance.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::plan::{InstanceId, Plan};
use super::record::{Failure, Kind, LATENCY_BOUNDS_MS, MetricPoint, SimSpan};
use crate::topology::{Protocol, ServiceKind};

pub(crate) fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

pub(crate) fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

/// Writes a simulation's records as OTLP.
#[derive(Clone)]
pub struct OtlpWriter {
    plan: Arc<Plan>,
}

impl OtlpWriter {
    pub(crate) fn new(plan: Arc<Plan>) -> Self {
        Self { plan }
    }

    /// The name of a simulated service.
    pub fn service_name(&self, service: super::plan::ServiceId) -> &str {
        &self.plan.services[service].name
    }

    pub fn instance_count(&self) -> usize {
        self.plan.instances.len()
    }

    /// The resource an instance reports under (a deploy bumps its version).
    pub fn resource(&self, instance: InstanceId, deployed: bool) -> Resource {
        let planned = &self.plan.instances[instance];
        let version = &self.plan.versions[planned.service];
        let version = if deployed {
            format!("{version}-next")
        } else {
            version.to_string()
        };
        Resource {
            attributes: vec![
                text("service.name", &self.plan.services[planned.service].name),
                text("service.namespace", &self.plan.namespace),
                text("service.version", &version),
                text("service.instance.id", &planned.name),
                text("cloud.region", &self.plan.regions[planned.region]),
                text("telemetry.sdk.name", "meshtwin-datasets"),
            ],
            ..Resource::default()
        }
    }

    /// One export request per reporting instance, in first-seen order.
    pub fn traces<'a>(
        &self,
        spans: impl IntoIterator<Item = &'a SimSpan>,
    ) -> ExportTraceServiceRequest {
        let mut groups: Vec<((InstanceId, bool), Vec<Span>)> = Vec::new();
        for span in spans {
            let key = (span.instance, span.deployed);
            let converted = self.span(span);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, group)) => group.push(converted),
                None => groups.push((key, vec![converted])),
            }
        }
        ExportTraceServiceRequest {
            resource_spans: groups
                .into_iter()
                .map(|((instance, deployed), spans)| ResourceSpans {
                    resource: Some(self.resource(instance, deployed)),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..ScopeSpans::default()
                    }],
                    ..ResourceSpans::default()
                })
                .collect(),
        }
    }

    pub fn span(&self, span: &SimSpan) -> Span {
        let operation = &*self.plan.operations[span.operation];
        let peer = &self.plan.services[span.peer];
        let reporter = self.plan.service_of(span.instance);
        let mut attributes = match span.kind {
            Kind::Client if peer.kind.is_backend() => vec![
                text(
                    "db.system.name",
                    peer.system.as_deref().unwrap_or("other_sql"),
                ),
                text("db.operation.name", operation),
                text("server.address", &peer.name),
            ],
            Kind::Client => {
                let mut a = protocol_attributes(peer.protocol, operation, span.failure);
                a.push(text("server.address", &peer.name));
                a
            }
            Kind::Server => protocol_attributes(reporter.protocol, operation, span.failure),
            Kind::Producer | Kind::Consumer => {
                let system = match span.kind {
                    Kind::Producer => peer.system.as_deref(),
                    _ => None,
                };
                let mut a = vec![
                    text("messaging.system", system.unwrap_or("kafka")),
                    text("messaging.destination.name", operation),
                    text(
                        "messaging.operation.type",
                        if span.kind == Kind::Producer {
                            "send"
                        } else {
                            "process"
                        },
                    ),
                ];
                if span.kind == Kind::Producer {
                    a.push(text("server.address", &peer.name));
                }
                a
            }
        };
        if span.attempt > 0 {
            attributes.push(kv(
                "http.request.resend_count",
                Value::IntValue(i64::from(span.attempt)),
            ));
        }
        if let Some(failure) = span.failure {
            attributes.push(text("error.type", failure_type(failure)));
        }
        let events = match span.failure {
            Some(Failure::Exception) => vec![Event {
                time_unix_nano: span.end,
                name: "exception".to_owned(),
                attributes: vec![
                    text("exception.type", "java.lang.IllegalStateException"),
                    text("exception.message", "simulated unhandled exception"),
                ],
                ..Event::default()
            }],
            _ => Vec::new(),
        };
        let links = span
            .link
            .map(|(trace_id, span_id)| Link {
                trace_id: trace_id.to_be_bytes().to_vec(),
                span_id: span_id.to_be_bytes().to_vec(),
                ..Link::default()
            })
            .into_iter()
            .collect();
        Span {
            trace_id: span.trace_id.to_be_bytes().to_vec(),
            span_id: span.span_id.to_be_bytes().to_vec(),
            parent_span_id: if span.parent_span_id == 0 {
                Vec::new()
            } else {
                span.parent_span_id.to_be_bytes().to_vec()
            },
            name: operation.to_owned(),
            kind: match span.kind {
                Kind::Client => SpanKind::Client,
                Kind::Server => SpanKind::Server,
                Kind::Producer => SpanKind::Producer,
                Kind::Consumer => SpanKind::Consumer,
            } as i32,
            start_time_unix_nano: span.start,
            end_time_unix_nano: span.end,
            attributes,
            events,
            links,
            status: span.failure.map(|failure| Status {
                code: StatusCode::Error as i32,
                message: failure_type(failure).to_owned(),
            }),
            ..Span::default()
        }
    }

    /// One export request with every point's instance as a resource.
    pub fn metrics<'a>(
        &self,
        points: impl IntoIterator<Item = &'a MetricPoint>,
    ) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: points
                .into_iter()
                .map(|point| ResourceMetrics {
                    resource: Some(self.resource(point.instance, point.deployed)),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: self.instance_metrics(point),
                        ..ScopeMetrics::default()
                    }],
                    ..ResourceMetrics::default()
                })
                .collect(),
        }
    }

    fn instance_metrics(&self, p: &MetricPoint) -> Vec<Metric> {
        let gauge = |name: &str, unit: &str, value: number_data_point::Value| Metric {
            name: name.to_owned(),
            unit: unit.to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: p.end,
                    value: Some(value),
                    ..NumberDataPoint::default()
                }],
            })),
            ..Metric::default()
        };
        let service = self.plan.service_of(p.instance);
        let name = match (service.kind, service.protocol) {
            (ServiceKind::Service, Protocol::Http) => "http.server.request.duration",
            (ServiceKind::Service, _) => "rpc.server.duration",
            _ => "db.server.operation.duration",
        };
        let histogram = Metric {
            name: name.to_owned(),
            unit: "ms".to_owned(),
            description: format!("{} requests, {} failed", p.requests, p.errors),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    start_time_unix_nano: p.start,
                    time_unix_nano: p.end,
                    count: p.requests,
                    sum: Some(p.latency_sum_ms),
                    bucket_counts: p.latency_buckets.clone(),
                    explicit_bounds: LATENCY_BOUNDS_MS.to_vec(),
                    ..HistogramDataPoint::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
            })),
            ..Metric::default()
        };
        let errors = Metric {
            name: "meshtwin.sim.request.errors".to_owned(),
            unit: "{request}".to_owned(),
            data: Some(metric::Data::Sum(
                opentelemetry_proto::tonic::metrics::v1::Sum {
                    data_points: vec![NumberDataPoint {
                        start_time_unix_nano: p.start,
                        time_unix_nano: p.end,
                        value: Some(number_data_point::Value::AsInt(p.errors as i64)),
                        ..NumberDataPoint::default()
                    }],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    is_monotonic: true,
                },
            )),
            ..Metric::default()
        };
        vec![
            gauge(
                "container.cpu.utilization",
                "1",
                number_data_point::Value::AsDouble(p.cpu_utilization),
            ),
            gauge(
                "container.memory.usage",
                "By",
                number_data_point::Value::AsInt(p.memory_bytes as i64),
            ),
            histogram,
            errors,
        ]
    }
}

fn failure_type(failure: Failure) -> &'static str {
    match failure {
        Failure::Server => "500",
        Failure::Exception => "exception",
        Failure::Dependency => "502",
        Failure::Timeout => "timeout",
        Failure::Refused => "connection_refused",
        Failure::Overloaded => "503",
    }
}

fn protocol_attributes(
    protocol: Protocol,
    operation: &str,
    failure: Option<Failure>,
) -> Vec<KeyValue> {
    match protocol {
        Protocol::Grpc | Protocol::Thrift => {
            let (service, method) = operation.split_once('/').unwrap_or(("", operation));
            let mut attributes = vec![
                text(
                    "rpc.system",
                    if protocol == Protocol::Grpc {
                        "grpc"
                    } else {
                        "apache_thrift"
                    },
                ),
                text("rpc.method", method),
            ];
            if !service.is_empty() {
                attributes.push(text("rpc.service", service));
            }
            if protocol == Protocol::Grpc {
                let code = match failure {
                    None => 0,
                    Some(Failure::Timeout) => 4,
                    Some(Failure::Overloaded) => 8,
                    Some(Failure::Exception) => 13,
                    Some(_) => 14,
                };
                attributes.push(kv("rpc.grpc.status_code", Value::IntValue(code)));
            }
            attributes
        }
        Protocol::Http => {
            let (method, route) = operation.split_once(' ').unwrap_or(("GET", operation));
            let status = match failure {
                None => 200,
                Some(Failure::Timeout) => 504,
                Some(Failure::Overloaded) => 503,
                Some(Failure::Dependency) => 502,
                Some(_) => 500,
            };
            let mut attributes = vec![
                text("http.request.method", method),
                text("http.route", route),
            ];
            if failure != Some(Failure::Refused) {
                attributes.push(kv("http.response.status_code", Value::IntValue(status)));
            }
            attributes
        }
    }
}
