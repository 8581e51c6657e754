//! The twin's synchronous core: span facts in, graph state out.
//!
//! Deterministic: it reads no clock and does no I/O. Callers pass the wall
//! time of arrival; everything else runs on the event-time clock.

use meshtwin_model::graph::{ConnectionType, GraphSnapshot, NodeKind};
use meshtwin_model::series::{EdgeSeries, TwinCounters};
use meshtwin_model::span::{PeerHint, Span, SpanKind};

use crate::clock::TwinClock;
use crate::config::TwinConfig;
use crate::graph::{CallRecord, LimitHit, ServiceGraph};
use crate::pairing::{Call, Half, Pairing};
use crate::window::LONGEST_VIEW_NANOS;

const SECOND: u64 = 1_000_000_000;

pub struct Twin {
    idle_expiry: u64,
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
            clock: TwinClock::default(),
            pairing: Pairing::new(config.pair_wait_seconds * SECOND, config.max_pending_spans),
            graph: ServiceGraph::new(config.max_nodes, config.max_edges),
            counters: TwinCounters::default(),
            calls: Vec::new(),
        }
    }

    /// Takes in one batch of spans that arrived at wall time `wall`.
    pub fn ingest(&mut self, spans: &[Span], wall: u64) {
        for span in spans {
            let end = if span.end_unix_nanos > wall {
                self.counters.future_spans += 1;
                wall
            } else {
                span.end_unix_nanos
            };
            self.clock.observe(end, wall);
            self.ingest_one(span, end);
        }
        self.record_calls();
    }

    fn ingest_one(&mut self, span: &Span, end: u64) {
        let now = self.clock.now();
        self.counters.spans_ingested += 1;
        if end.saturating_add(LONGEST_VIEW_NANOS) < now {
            self.counters.late_spans += 1;
        }
        match self.graph.service(&span.service, end) {
            Ok(node) if span.kind.is_callee() => {
                self.graph
                    .record_served(node, end, span.duration_nanos(), span.failed);
            }
            Ok(_) => {}
            Err(_) => {
                self.counters.dropped_node_limit += 1;
                return;
            }
        }
        let half = Half::new(span, end);
        self.pairing
            .offer(span, half, now, &mut self.counters, &mut self.calls);
    }

    /// Moves the clock on by wall time, expires what waited too long and
    /// removes what has been idle too long.
    pub fn advance(&mut self, wall: u64) {
        self.clock.tick(wall);
        let now = self.clock.now();
        self.pairing
            .expire(now, &mut self.counters, &mut self.calls);
        self.record_calls();
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
            }
        }
        self.calls = calls;
    }

    fn record_call(&mut self, call: Call) -> Result<(), LimitHit> {
        match call {
            Call::Paired { caller, callee } => {
                let from = self.graph.service(&caller.service, caller.end)?;
                let to = self.graph.service(&callee.service, callee.end)?;
                let connection_type = match (caller.kind, callee.kind) {
                    (SpanKind::Producer, _) | (_, SpanKind::Consumer) => {
                        ConnectionType::MessagingSystem
                    }
                    _ => ConnectionType::Direct,
                };
                let record = CallRecord {
                    at: caller.end,
                    failed: caller.failed || callee.failed,
                    client_nanos: Some(caller.duration),
                    server_nanos: Some(callee.duration),
                };
                self.graph.record_call(from, to, connection_type, record)
            }
            Call::FromParent { parent, callee } => {
                let from = self.graph.service(&parent, callee.end)?;
                let to = self.graph.service(&callee.service, callee.end)?;
                let record = CallRecord {
                    at: callee.end,
                    failed: callee.failed,
                    client_nanos: None,
                    server_nanos: Some(callee.duration),
                };
                self.graph
                    .record_call(from, to, ConnectionType::Direct, record)
            }
            Call::Virtual { caller, hint } => {
                let from = self.graph.service(&caller.service, caller.end)?;
                let to = self.graph.virtual_node(&hint, caller.end)?;
                let connection_type = match hint {
                    PeerHint::Database { .. } => ConnectionType::Database,
                    PeerHint::Messaging { .. } => ConnectionType::MessagingSystem,
                    PeerHint::Service(_) | PeerHint::Address(_) => ConnectionType::VirtualNode,
                };
                // A virtual node reports nothing: its callers' view is all there is.
                if self.graph.graph[to].kind != NodeKind::Service {
                    self.graph
                        .record_served(to, caller.end, caller.duration, caller.failed);
                }
                let record = CallRecord {
                    at: caller.end,
                    failed: caller.failed,
                    client_nanos: Some(caller.duration),
                    server_nanos: None,
                };
                self.graph.record_call(from, to, connection_type, record)
            }
        }
    }

    /// The graph at the current twin time.
    pub fn snapshot(&self, version: u64) -> GraphSnapshot {
        self.graph.snapshot(version, self.clock.now())
    }

    pub fn series(&self) -> Vec<EdgeSeries> {
        self.graph.series()
    }

    pub fn counters(&self) -> TwinCounters {
        TwinCounters {
            pending_spans: self.pairing.pending() as u64,
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
