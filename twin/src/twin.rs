//! The twin's synchronous core: span facts in, graph state out.
//!
//! Deterministic: it reads no clock and does no I/O. Callers pass the wall
//! time of arrival; everything else runs on the event-time clock.

use std::sync::Arc;

use meshtwin_model::anomaly::Anomaly;
use meshtwin_model::graph::{ConnectionType, GraphSnapshot, NodeKind};
use meshtwin_model::incident::Incident;
use meshtwin_model::series::{EdgeSeries, TwinCounters};
use meshtwin_model::span::{PeerHint, ServiceSpans, Span, SpanKind};

use petgraph::stable_graph::NodeIndex;

use crate::anomalies::Anomalies;
use crate::clock::TwinClock;
use crate::config::TwinConfig;
use crate::graph::{CallRecord, LimitHit, NodeRef, Served, ServiceGraph};
use crate::pairing::{Call, Half, Pairing};
use crate::window::LONGEST_VIEW_NANOS;

const SECOND: u64 = 1_000_000_000;

pub struct Twin {
    idle_expiry: u64,
    anomalies: Anomalies,
    clock: TwinClock,
    pairing: Pairing,
    graph: ServiceGraph,
    counters: TwinCounters,
    calls: Vec<Call>,
}

impl Twin {
    pub fn new(config: &TwinConfig) -> Self {
        Self {
            idle_expiry: config.idle_expiry_seconds * SECOND,
            anomalies: Anomalies::new(&config.detection),
            clock: TwinClock::default(),
            pairing: Pairing::new(config.pair_wait_seconds * SECOND, config.max_pending_spans),
            graph: ServiceGraph::new(config.max_nodes, config.max_edges),
            counters: TwinCounters::default(),
            calls: Vec::new(),
        }
    }

    /// Takes in one batch of spans that arrived at wall time `wall`.
    pub fn ingest(&mut self, batch: &[ServiceSpans], wall: u64) {
        for group in batch {
            let first_end = group
                .spans
                .first()
                .map_or(wall, |s| s.end_unix_nanos.min(wall));
            let node = match self.graph.service(&group.service, first_end) {
                Ok(node) => Some(node),
                Err(_) => {
                    self.counters.dropped_node_limit += group.spans.len() as u64;
                    None
                }
            };
            for span in &group.spans {
                let end = if span.end_unix_nanos > wall {
                    self.counters.future_spans += 1;
                    wall
                } else {
                    span.end_unix_nanos
                };
                self.clock.observe(end, wall);
                self.counters.spans_ingested += 1;
                if let Some(node) = node {
                    self.ingest_one(span, node, end, group.service.region.as_deref());
                }
            }
        }
        self.record_calls();
        // A replay moves event time faster than the publish ticks: every
        // bucket it closes is evaluated, not only the last few.
        self.anomalies.evaluate(&mut self.graph, self.clock.now());
    }

    fn ingest_one(&mut self, span: &Span, node: NodeIndex, end: u64, locality: Option<&str>) {
        let now = self.clock.now();
        if end.saturating_add(LONGEST_VIEW_NANOS) < now {
            self.counters.late_spans += 1;
        }
        if span.kind.is_callee() {
            let served = Served {
                at: end,
                nanos: span.duration_nanos(),
                failed: span.failed,
                locality,
            };
            self.graph.record_served(node, served);
        } else {
            self.graph.touch(node, end);
        }
        let half = Half::new(span, self.graph.node_ref(node), end);
        self.pairing
            .offer(span, half, now, &mut self.counters, &mut self.calls);
    }

    /// Moves the clock on by wall time, expires what waited too long, runs
    /// the closed buckets through the detectors and removes what has been
    /// idle too long.
    pub fn advance(&mut self, wall: u64) {
        self.clock.tick(wall);
        let now = self.clock.now();
        self.pairing
            .expire(now, &mut self.counters, &mut self.calls);
        self.record_calls();
        self.anomalies.evaluate(&mut self.graph, now);
        if let Some(cutoff) = now.checked_sub(self.idle_expiry) {
            let (nodes, edges) = self.graph.expire_idle(cutoff);
            self.counters.nodes_expired += nodes;
            self.counters.edges_expired += edges;
        }
    }

    fn record_calls(&mut self) {
        let mut calls = std::mem::take(&mut self.calls);
        for call in calls.drain(..) {
            let result = self.record_call(call);
            match result {
                Ok(()) => {}
                Err(LimitHit::Nodes) => self.counters.dropped_node_limit += 1,
                Err(LimitHit::Edges) => self.counters.dropped_edge_limit += 1,
                Err(LimitHit::Expired) => self.counters.stale_calls += 1,
            }
        }
        self.calls = calls;
    }

    fn record_call(&mut self, call: Call) -> Result<(), LimitHit> {
        match call {
            Call::Paired { caller, callee } => {
                let from = self.resolve(caller.node)?;
                let to = self.resolve(callee.node)?;
                let connection_type = match (caller.kind, callee.kind) {
                    (SpanKind::Producer, _) | (_, SpanKind::Consumer) => {
                        ConnectionType::MessagingSystem
                    }
                    _ => ConnectionType::Direct,
                };
                let record = CallRecord {
                    at: caller.end,
                    failed: caller.failed || callee.failed,
                    mtls: caller.mtls || callee.mtls,
                    client_nanos: Some(caller.duration),
                    server_nanos: Some(callee.duration),
                };
                self.graph.record_call(from, to, connection_type, record)
            }
            Call::FromParent { parent, callee } => {
                let from = self.resolve(parent)?;
                let to = self.resolve(callee.node)?;
                let record = CallRecord {
                    at: callee.end,
                    failed: callee.failed,
                    mtls: callee.mtls,
                    client_nanos: None,
                    server_nanos: Some(callee.duration),
                };
                self.graph
                    .record_call(from, to, ConnectionType::Direct, record)
            }
            Call::Virtual { caller, hint } => {
                let from = self.resolve(caller.node)?;
                let namespace = self.graph.graph[from].namespace.clone();
                let to = self
                    .graph
                    .virtual_node(&hint, namespace.as_deref(), caller.end)?;
                let connection_type = match hint {
                    PeerHint::Database { .. } => ConnectionType::Database,
                    PeerHint::Messaging { .. } => ConnectionType::MessagingSystem,
                    PeerHint::Service(_) | PeerHint::Address(_) => ConnectionType::VirtualNode,
                };
                // A virtual node reports nothing: its callers' view is all there is.
                if self.graph.graph[to].kind != NodeKind::Service {
                    let served = Served {
                        at: caller.end,
                        nanos: caller.duration,
                        failed: caller.failed,
                        locality: None,
                    };
                    self.graph.record_served(to, served);
                }
                let record = CallRecord {
                    at: caller.end,
                    failed: caller.failed,
                    mtls: caller.mtls,
                    client_nanos: Some(caller.duration),
                    server_nanos: None,
                };
                self.graph.record_call(from, to, connection_type, record)
            }
        }
    }

    fn resolve(&self, node: NodeRef) -> Result<NodeIndex, LimitHit> {
        self.graph.resolve(node).ok_or(LimitHit::Expired)
    }

    /// The graph at the current twin time.
    pub fn snapshot(&self, version: u64) -> GraphSnapshot {
        self.graph.snapshot(version, self.clock.now())
    }

    pub fn series(&self) -> Vec<EdgeSeries> {
        self.graph.series()
    }

    /// The latest alarms, oldest first.
    pub fn anomalies(&self) -> Arc<Vec<Anomaly>> {
        self.anomalies.recent()
    }

    /// The incidents kept, oldest first.
    pub fn incidents(&self) -> Arc<Vec<Incident>> {
        self.anomalies.incidents.all()
    }

    /// The incidents opened, updated or resolved since the last call.
    pub fn take_changed_incidents(&mut self) -> Vec<Incident> {
        self.anomalies.incidents.take_changed()
    }

    /// Continues from incidents kept before a restart.
    pub fn restore_incidents(&mut self, incidents: Vec<Incident>) {
        self.anomalies.incidents.restore(incidents);
    }

    pub fn counters(&self) -> TwinCounters {
        TwinCounters {
            pending_spans: self.pairing.pending() as u64,
            anomalies: self.anomalies.total,
            ..self.counters
        }
    }

    /// The event-time clock, in Unix nanoseconds.
    pub fn now(&self) -> u64 {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests;
