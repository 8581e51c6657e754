//! OTLP trace requests → span facts.
//!
//! A request with a malformed field (an id of the wrong length) is refused
//! whole: the sender has a bug and retrying will not help. A well-formed
//! span that cannot be used (all-zero ids, end before start) is rejected
//! alone and reported through OTLP partial success.

use std::sync::Arc;

use meshtwin_model::ids::{SpanId, SpanKey, TraceId};
use meshtwin_model::span::{PeerHint, ServiceIdentity, ServiceSpans, Span, SpanBatch, SpanKind};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

/// The service name the OTel spec prescribes when a resource has none.
const UNKNOWN_SERVICE: &str = "unknown_service";

/// The usable spans of a request, and what was rejected.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    pub(crate) spans: SpanBatch,
    pub(crate) accepted: usize,
    pub(crate) rejected: u64,
    /// Why the first span was rejected, for the partial-success message.
    pub(crate) first_rejection: Option<String>,
}

impl Converted {
    fn reject(&mut self, at: &Position, why: &str) {
        self.rejected += 1;
        if self.first_rejection.is_none() {
            self.first_rejection = Some(format!("{at}: {why}"));
        }
    }
}

/// Where a span sits in the request, for error messages.
struct Position {
    resource: usize,
    scope: usize,
    span: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "resource_spans[{}].scope_spans[{}].spans[{}]",
            self.resource, self.scope, self.span
        )
    }
}

/// The usable spans of a request as the twin takes them, and how many
/// were rejected; `Err` says why a malformed request is refused whole.
/// The receivers' own conversion, for tools that feed a twin from files.
pub fn span_facts(request: &ExportTraceServiceRequest) -> Result<(SpanBatch, u64), String> {
    spans_from_request(request).map(|c| (c.spans, c.rejected))
}

/// Converts a whole request; `Err` carries the message for a malformed one.
pub(crate) fn spans_from_request(request: &ExportTraceServiceRequest) -> Result<Converted, String> {
    let mut out = Converted::default();
    for (resource_index, resource_spans) in request.resource_spans.iter().enumerate() {
        let attributes = resource_spans
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let mut group = ServiceSpans {
            service: Arc::new(service_identity(attributes)),
            spans: Vec::new(),
        };
        for (scope_index, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            for (span_index, span) in scope_spans.spans.iter().enumerate() {
                let at = Position {
                    resource: resource_index,
                    scope: scope_index,
                    span: span_index,
                };
                let ids = read_ids(span).map_err(|e| format!("{at}: {e}"))?;
                let (trace_id, span_id, parent_span_id, links) = ids;
                if !trace_id.is_valid() || !span_id.is_valid() {
                    out.reject(&at, "all-zero trace_id or span_id");
                    continue;
                }
                if span.start_time_unix_nano == 0
                    || span.end_time_unix_nano < span.start_time_unix_nano
                {
                    out.reject(
                        &at,
                        "end_time_unix_nano is before start_time_unix_nano, or start is 0",
                    );
                    continue;
                }
                let kind = SpanKind::from_otlp(span.kind);
                let facts = SpanAttributes::read(&span.attributes, kind.is_caller());
                let status_error = span
                    .status
                    .as_ref()
                    .is_some_and(|s| s.code == StatusCode::Error as i32);
                group.spans.push(Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    kind,
                    start_unix_nanos: span.start_time_unix_nano,
                    end_unix_nanos: span.end_time_unix_nano,
                    failed: status_error || facts.failed(),
                    mtls: facts.mtls,
                    peer: facts.peer(),
                    links,
                });
            }
        }
        if !group.spans.is_empty() {
            out.accepted += group.spans.len();
            out.spans.push(group);
        }
    }
    Ok(out)
}

type Ids = (TraceId, SpanId, Option<SpanId>, Vec<SpanKey>);

fn read_ids(span: &opentelemetry_proto::tonic::trace::v1::Span) -> Result<Ids, String> {
    let trace_id = TraceId::from_slice(&span.trace_id).map_err(|e| e.to_string())?;
    let span_id = SpanId::from_slice(&span.span_id, "span_id").map_err(|e| e.to_string())?;
    let parent = SpanId::parent_from_slice(&span.parent_span_id).map_err(|e| e.to_string())?;
    let links = span
        .links
        .iter()
        .enumerate()
        .map(|(i, link)| {
            let trace_id = TraceId::from_slice(&link.trace_id);
            let span_id = SpanId::from_slice(&link.span_id, "span_id");
            match (trace_id, span_id) {
                (Ok(trace_id), Ok(span_id)) => Ok(SpanKey { trace_id, span_id }),
                (Err(e), _) | (_, Err(e)) => Err(format!("links[{i}].{e}")),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((trace_id, span_id, parent, links))
}

fn string_value(value: &Option<AnyValue>) -> Option<&str> {
    match value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn bool_value(value: &Option<AnyValue>) -> bool {
    matches!(
        value.as_ref().and_then(|v| v.value.as_ref()),
        Some(Value::BoolValue(true))
    )
}

fn int_value(value: &Option<AnyValue>) -> Option<i64> {
    match value.as_ref()?.value.as_ref()? {
        Value::IntValue(i) => Some(*i),
        Value::StringValue(s) => s.trim().parse().ok(),
        Value::DoubleValue(d) => Some(*d as i64),
        _ => None,
    }
}

fn service_identity(attributes: &[KeyValue]) -> ServiceIdentity {
    let find = |key: &str| {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| string_value(&kv.value))
    };
    let name = find("service.name").unwrap_or(UNKNOWN_SERVICE);
    let mut identity = ServiceIdentity::new(name, find("service.namespace"));
    identity.version = find("service.version").map(Into::into);
    identity.instance_id = find("service.instance.id").map(Into::into);
    identity.region = find("cloud.region").map(Into::into);
    identity
}

/// The span attributes the graph uses, read in one pass.
#[derive(Default)]
struct SpanAttributes<'a> {
    http_status: Option<i64>,
    grpc_status: Option<i64>,
    peer_service: Option<&'a str>,
    db_system: Option<&'a str>,
    server_address: Option<&'a str>,
    messaging_system: Option<&'a str>,
    mtls: bool,
}

impl<'a> SpanAttributes<'a> {
    /// Reads status codes always, and callee hints only for caller spans.
    fn read(attributes: &'a [KeyValue], caller: bool) -> Self {
        let mut out = Self::default();
        for kv in attributes {
            match kv.key.as_str() {
                "http.response.status_code" | "http.status_code" => {
                    out.http_status = int_value(&kv.value)
                }
                "rpc.grpc.status_code" => out.grpc_status = int_value(&kv.value),
                "mesh.tls" => out.mtls = bool_value(&kv.value),
                _ if !caller => {}
                "peer.service" => out.peer_service = string_value(&kv.value),
                "db.system.name" => out.db_system = string_value(&kv.value),
                "db.system" => out.db_system = out.db_system.or(string_value(&kv.value)),
                "server.address" => out.server_address = string_value(&kv.value),
                "net.peer.name" => {
                    out.server_address = out.server_address.or(string_value(&kv.value))
                }
                "messaging.system" => out.messaging_system = string_value(&kv.value),
                _ => {}
            }
        }
        out
    }

    fn failed(&self) -> bool {
        self.http_status.is_some_and(|s| s >= 500) || self.grpc_status.is_some_and(|s| s != 0)
    }

    fn peer(&self) -> Option<PeerHint> {
        if let Some(system) = self.db_system {
            let name = self.server_address.or(self.peer_service).unwrap_or(system);
            return Some(PeerHint::Database {
                system: system.into(),
                name: name.into(),
            });
        }
        if let Some(system) = self.messaging_system {
            return Some(PeerHint::Messaging {
                system: system.into(),
                name: self.peer_service.unwrap_or(system).into(),
            });
        }
        if let Some(service) = self.peer_service {
            return Some(PeerHint::Service(service.into()));
        }
        self.server_address.map(|a| PeerHint::Address(a.into()))
    }
}

/// How many data points a metrics request carries.
pub(crate) fn metric_points(request: &ExportMetricsServiceRequest) -> u64 {
    let metrics = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics);
    metrics
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        } as u64)
        .sum()
}

#[cfg(test)]
mod tests;
