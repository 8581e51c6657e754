//! Whole traces on demand, one at a time: the simulation with nothing
//! else in flight, so each trace shows the topology's call tree without
//! queueing. The same topology and seed give the same traces, span for
//! span, whatever the wall clock says.
//!
//! Each call is a CLIENT span in the caller and a SERVER span in the
//! callee (datastores report nothing: only their callers' CLIENT spans
//! name them).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use crate::sim::Simulation;
use crate::sim::otlp::OtlpWriter;
use crate::topology::Topology;

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
    simulation: Simulation,
    writer: OtlpWriter,
    instances: Vec<Instance>,
}

impl TraceGenerator {
    pub fn new(topology: Topology, seed: u64) -> Self {
        let simulation = Simulation::one_at_a_time(&topology, seed);
        let writer = simulation.otlp();
        let instances = (0..writer.instance_count())
            .map(|id| Instance {
                service: simulation.service_of(id).to_owned(),
                resource: writer.resource(id, false),
            })
            .collect();
        Self {
            topology,
            simulation,
            writer,
            instances,
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
        let spans = self.simulation.one_trace();
        let last = spans.iter().map(|s| s.end).max().unwrap_or(0);
        spans
            .iter()
            .map(|simulated| {
                let mut span = self.writer.span(simulated);
                span.start_time_unix_nano = shift(span.start_time_unix_nano, last, end_unix_nanos);
                span.end_time_unix_nano = shift(span.end_time_unix_nano, last, end_unix_nanos);
                for event in &mut span.events {
                    event.time_unix_nano = shift(event.time_unix_nano, last, end_unix_nanos);
                }
                GeneratedSpan {
                    instance: simulated.instance,
                    span,
                }
            })
            .collect()
    }
}

/// `at`, moved so that `last` lands on `end`.
fn shift(at: u64, last: u64, end: u64) -> u64 {
    end.saturating_sub(last - at.min(last))
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
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

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
    fn each_trace_ends_when_asked_and_its_spans_are_well_formed() {
        let mut generator = TraceGenerator::new(Topology::online_boutique(), 7);
        let end = 1_800_000_000_000_000_000;
        for _ in 0..200 {
            let spans = generator.trace(end);
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
            assert!(spans.iter().any(|g| g.span.kind == SpanKind::Server as i32));
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
