//! The engine's view of the twin: each service's requests served per
//! locality (`NodeView::localities`, last minute), with the highest rate
//! each has carried so far as its shown capacity.
//!
//! Anomalies and incidents are the service's, shared by its localities:
//! the twin's detectors and incidents work per service.

use std::collections::{BTreeMap, BTreeSet};

use meshtwin_model::series::TwinView;

use crate::observed::{Observed, ScopeSignals};

#[derive(Debug, Default)]
pub struct TwinSignals {
    peaks: BTreeMap<(String, String), f64>,
}

impl TwinSignals {
    /// The signals of every service and locality in `view`.
    pub fn observe(&mut self, view: &TwinView) -> Observed {
        let in_incident: BTreeSet<&str> = view
            .incidents
            .iter()
            .filter(|i| i.is_open())
            .flat_map(|i| i.nodes.iter().map(String::as_str))
            .collect();
        let snapshot = &view.snapshot;
        // Each node's callers, gathered in one pass over the edges.
        let names: BTreeMap<&str, &str> = snapshot
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.name.as_str()))
            .collect();
        let mut callers_of: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
        for edge in &snapshot.edges {
            if let Some(source) = names.get(edge.source.as_str()) {
                callers_of
                    .entry(edge.target.as_str())
                    .or_default()
                    .push((source, edge.windows.last_1m.rate_per_second));
            }
        }
        let mut observed = Observed::default();
        for node in &snapshot.nodes {
            let service_rate = node.windows.last_1m.rate_per_second;
            let callers = callers_of
                .get(node.id.as_str())
                .map_or(&[][..], Vec::as_slice);
            for locality in &node.localities {
                let window = &locality.windows.last_1m;
                let key = (node.name.clone(), locality.locality.clone());
                let peak = self.peaks.entry(key.clone()).or_default();
                *peak = peak.max(window.rate_per_second);
                let share = if service_rate > 0.0 {
                    window.rate_per_second / service_rate
                } else {
                    0.0
                };
                let signals = ScopeSignals {
                    error_ratio: (window.requests > 0).then_some(window.error_ratio),
                    p99_ms: window.latency_ms.map(|q| q.p99),
                    rate_per_second: window.rate_per_second,
                    peak_rate_per_second: *peak,
                    anomaly: !node.anomalies.is_empty(),
                    incident: in_incident.contains(node.id.as_str()),
                    // The twin's edges are per service: each caller's
                    // rate in this locality's share.
                    callers: callers
                        .iter()
                        .map(|(caller, rate)| ((*caller).to_owned(), rate * share))
                        .collect(),
                };
                observed.scopes.insert(key, signals);
            }
        }
        observed
    }
}
