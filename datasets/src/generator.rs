//! Deterministic trace generation: the same topology and seed give the
//! same traces, span for span, whatever the wall clock says.
//!
//! Each call is a CLIENT span in the caller and a SERVER span in the
//! callee (databases report nothing: only their callers' CLIENT spans
//! name them). A service does its own work in two halves around its
//! sequential downstream calls, so latency adds up along the call tree.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use crate::topology::{CallSpec, Protocol, ServiceKind, Topology};

const MS: f64 = 1e6;
/// Median one-way network delay between services.
const NETWORK_MEDIAN_MS: f64 = 0.25;
/// Calls nest at most this deep, so a cyclic topology still ends.
const MAX_DEPTH: usize = 12;
/// How likely a failed call fails its caller too.
const ERROR_PROPAGATION: f64 = 0.7;

/// One running copy of a service: it reports spans under its own resource.
#[derive(Debug, Clone)]
pub struct Instance {
    pub service: String,
    pub resource: Resource,
}

/// A span and the instance that reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedSpan {
    pub instance: usize,
    pub span: Span,
}

pub struct TraceGenerator {
    topology: Topology,
    rng: ChaCha8Rng,
    instances: Vec<Instance>,
    /// For each service (topology order): its first instance and count.
    instance_ranges: Vec<(usize, usize)>,
    self_time: Vec<Option<LogNormal<f64>>>,
    network: LogNormal<f64>,
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::StringValue(value.to_owned()))
}

fn log_normal(median_ms: f64, sigma: f64) -> LogNormal<f64> {
    LogNormal::new((median_ms * MS).ln(), sigma).expect("validated topology values")
}

impl TraceGenerator {
    pub fn new(topology: Topology, seed: u64) -> Self {
        let mut instances = Vec::new();
        let mut instance_ranges = Vec::new();
        for service in &topology.services {
            let first = instances.len();
            let count = match service.kind {
                ServiceKind::Service => service.instances as usize,
                ServiceKind::Database => 0,
            };
            for index in 0..count {
                let attributes = vec![
                    text("service.name", &service.name),
                    text("service.namespace", &topology.namespace),
                    text("service.version", &service.version),
                    text("service.instance.id", &format!("{}-{index}", service.name)),
                    text("cloud.region", &topology.region),
                    text("telemetry.sdk.name", "meshtwin-datasets"),
                ];
                instances.push(Instance {
                    service: service.name.clone(),
                    resource: Resource {
                        attributes,
                        ..Resource::default()
                    },
                });
            }
            instance_ranges.push((first, count));
        }
        let self_time = topology
            .services
            .iter()
            .map(|s| (s.self_ms > 0.0).then(|| log_normal(s.self_ms, s.sigma)))
            .collect();
        Self {
            topology,
            rng: ChaCha8Rng::seed_from_u64(seed),
            instances,
            instance_ranges,
            self_time,
            network: log_normal(NETWORK_MEDIAN_MS, 0.4),
        }
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// One whole trace whose last span ends at `end_unix_nanos`.
    pub fn trace(&mut self, end_unix_nanos: u64) -> Vec<GeneratedSpan> {
        let mut trace = Trace {
            id: self.id::<16>(),
            spans: Vec::new(),
        };
        let entry = self.service_index(&self.topology.entry.clone());
        let caller = self.pick_instance(entry);
        let mut cursor = 0;
        let calls: Vec<CallSpec> = self
            .topology
            .calls_from(&self.topology.entry)
            .cloned()
            .collect();
        for call in &calls {
            if self.rng.random_bool(call.probability) {
                cursor = self.call(&mut trace, caller, None, call, cursor, 0).0;
            }
        }
        let offset = end_unix_nanos.saturating_sub(cursor);
        for generated in &mut trace.spans {
            generated.span.start_time_unix_nano += offset;
            generated.span.end_time_unix_nano += offset;
        }
        trace.spans
    }

    fn id<const N: usize>(&mut self) -> Vec<u8> {
        let mut id = [0u8; N];
        while id == [0u8; N] {
            self.rng.fill(&mut id[..]);
        }
        id.to_vec()
    }

    fn service_index(&self, name: &str) -> usize {
        self.topology
            .services
            .iter()
            .position(|s| s.name == name)
            .expect("validated topology")
    }

    fn pick_instance(&mut self, service: usize) -> usize {
        let (first, count) = self.instance_ranges[service];
        first + self.rng.random_range(0..count.max(1))
    }

    fn sample(&mut self, distribution: Option<LogNormal<f64>>) -> u64 {
        distribution.map_or(0, |d| d.sample(&mut self.rng) as u64)
    }

    /// One call from `caller` starting at `start`; returns when the caller
    /// sees the answer, and whether it failed.
    fn call(
        &mut self,
        trace: &mut Trace,
        caller: usize,
        parent: Option<Vec<u8>>,
        call: &CallSpec,
        start: u64,
        depth: usize,
    ) -> (u64, bool) {
        let callee = self.service_index(&call.to);
        let spec = self.topology.services[callee].clone();
        let client_id = self.id::<8>();
        let there = self.sample(Some(self.network));
        let back = self.sample(Some(self.network));
        let (served_until, failed) = match spec.kind {
            ServiceKind::Database => {
                let work = self.sample(self.self_time[callee]);
                (start + there + work, self.rng.random_bool(spec.error_rate))
            }
            ServiceKind::Service => {
                let instance = self.pick_instance(callee);
                self.serve(
                    trace,
                    instance,
                    callee,
                    &client_id,
                    call,
                    start + there,
                    depth,
                )
            }
        };
        let end = served_until + back;
        let mut attributes = match (spec.kind, &spec.system) {
            (ServiceKind::Database, Some(system)) => vec![
                text("db.system.name", system),
                text("db.system", system),
                text("db.operation.name", &call.operation),
            ],
            _ => protocol_attributes(spec.protocol, &call.operation, failed),
        };
        attributes.push(text("server.address", &call.to));
        trace.push(
            caller,
            SpanParts {
                span_id: client_id,
                parent,
                name: &call.operation,
                kind: SpanKind::Client,
                start,
                end,
                failed,
                attributes,
            },
        );
        (end, failed)
    }

    /// Serves one request at `instance`; returns its end and failure.
    #[allow(clippy::too_many_arguments)]
    fn serve(
        &mut self,
        trace: &mut Trace,
        instance: usize,
        service: usize,
        client_id: &[u8],
        call: &CallSpec,
        start: u64,
        depth: usize,
    ) -> (u64, bool) {
        let spec = self.topology.services[service].clone();
        let span_id = self.id::<8>();
        let work = self.sample(self.self_time[service]);
        let mut cursor = start + work / 2;
        let mut failed = false;
        let calls: Vec<CallSpec> = if depth < MAX_DEPTH {
            self.topology.calls_from(&spec.name).cloned().collect()
        } else {
            Vec::new()
        };
        for downstream in &calls {
            if !self.rng.random_bool(downstream.probability) {
                continue;
            }
            let (end, child_failed) = self.call(
                trace,
                instance,
                Some(span_id.clone()),
                downstream,
                cursor,
                depth + 1,
            );
            cursor = end;
            failed |= child_failed && self.rng.random_bool(ERROR_PROPAGATION);
        }
        failed |= self.rng.random_bool(spec.error_rate);
        let end = cursor + (work - work / 2);
        trace.push(
            instance,
            SpanParts {
                span_id,
                parent: Some(client_id.to_vec()),
                name: &call.operation,
                kind: SpanKind::Server,
                start,
                end,
                failed,
                attributes: protocol_attributes(spec.protocol, &call.operation, failed),
            },
        );
        (end, failed)
    }
}

fn protocol_attributes(protocol: Protocol, operation: &str, failed: bool) -> Vec<KeyValue> {
    match protocol {
        Protocol::Grpc => {
            let (service, method) = operation.split_once('/').unwrap_or((operation, ""));
            vec![
                text("rpc.system", "grpc"),
                text("rpc.service", service),
                text("rpc.method", method),
                // 14 UNAVAILABLE when failed, 0 OK otherwise.
                kv(
                    "rpc.grpc.status_code",
                    Value::IntValue(if failed { 14 } else { 0 }),
                ),
            ]
        }
        Protocol::Http => {
            let (method, route) = operation.split_once(' ').unwrap_or(("GET", operation));
            vec![
                text("http.request.method", method),
                text("http.route", route),
                kv(
                    "http.response.status_code",
                    Value::IntValue(if failed { 500 } else { 200 }),
                ),
            ]
        }
    }
}

struct SpanParts<'a> {
    span_id: Vec<u8>,
    parent: Option<Vec<u8>>,
    name: &'a str,
    kind: SpanKind,
    start: u64,
    end: u64,
    failed: bool,
    attributes: Vec<KeyValue>,
}

struct Trace {
    id: Vec<u8>,
    spans: Vec<GeneratedSpan>,
}

impl Trace {
    fn push(&mut self, instance: usize, parts: SpanParts<'_>) {
        let status = parts.failed.then(|| Status {
            code: StatusCode::Error as i32,
            message: "simulated failure".to_owned(),
        });
        self.spans.push(GeneratedSpan {
            instance,
            span: Span {
                trace_id: self.id.clone(),
                span_id: parts.span_id,
                parent_span_id: parts.parent.unwrap_or_default(),
                name: parts.name.to_owned(),
                kind: parts.kind as i32,
                start_time_unix_nano: parts.start,
                end_time_unix_nano: parts.end,
                attributes: parts.attributes,
                status,
                ..Span::default()
            },
        });
    }
}

/// Groups spans into one export request per instance, as each instance's
/// own SDK would send them.
pub fn requests_by_instance(
    instances: &[Instance],
    spans: impl IntoIterator<Item = GeneratedSpan>,
) -> Vec<(usize, ExportTraceServiceRequest)> {
    let mut per_instance: Vec<Vec<Span>> = vec![Vec::new(); instances.len()];
    for generated in spans {
        per_instance[generated.instance].push(generated.span);
    }
    per_instance
        .into_iter()
        .enumerate()
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(index, spans)| (index, request_for(&instances[index], spans)))
        .collect()
}

/// One export request carrying `spans` of `instance`.
pub fn request_for(instance: &Instance, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(instance.resource.clone()),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_traces() {
        let mut a = TraceGenerator::new(Topology::online_boutique(), 42);
        let mut b = TraceGenerator::new(Topology::online_boutique(), 42);
        for i in 0..50 {
            assert_eq!(a.trace(1_000_000 + i), b.trace(1_000_000 + i));
        }
        let mut c = TraceGenerator::new(Topology::online_boutique(), 43);
        assert_ne!(a.trace(5), c.trace(5));
    }

    #[test]
    fn every_call_has_a_client_span_and_services_a_server_span() {
        let mut generator = TraceGenerator::new(Topology::online_boutique(), 7);
        let end = 1_800_000_000_000_000_000;
        for _ in 0..200 {
            let spans = generator.trace(end);
            let clients: Vec<&Span> = spans
                .iter()
                .map(|g| &g.span)
                .filter(|s| s.kind == SpanKind::Client as i32)
                .collect();
            for client in &clients {
                let is_db = client
                    .attributes
                    .iter()
                    .any(|kv| kv.key == "db.system.name");
                let servers = spans
                    .iter()
                    .filter(|g| g.span.parent_span_id == client.span_id)
                    .count();
                assert_eq!(servers, usize::from(!is_db), "{}", client.name);
            }
            let last = spans
                .iter()
                .map(|g| g.span.end_time_unix_nano)
                .max()
                .unwrap();
            assert_eq!(last, end);
            assert!(
                spans
                    .iter()
                    .all(|g| g.span.start_time_unix_nano <= g.span.end_time_unix_nano)
            );
        }
    }

    #[test]
    fn requests_group_spans_by_instance() {
        let mut generator = TraceGenerator::new(Topology::online_boutique(), 1);
        let spans = generator.trace(10_000_000_000);
        let total = spans.len();
        let requests = requests_by_instance(generator.instances(), spans);
        let counted: usize = requests
            .iter()
            .map(|(_, r)| r.resource_spans[0].scope_spans[0].spans.len())
            .sum();
        assert_eq!(counted, total);
        assert!(requests.len() >= 2);
    }
}
