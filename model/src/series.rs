//! Cumulative per-edge series and twin counters, for Prometheus `/metrics`.
//!
//! Names and buckets follow the OTel `servicegraph` connector, so Grafana
//! dashboards built for Tempo service graphs keep working.

use std::sync::Arc;

use crate::anomaly::Anomaly;
use crate::graph::{ConnectionType, GraphSnapshot};
use crate::incident::Incident;

/// Upper bounds (seconds) of the latency histogram buckets: the OTel
/// `servicegraph` connector's defaults.
pub const LATENCY_BUCKETS_SECONDS: [f64; 16] = [
    0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0, 15.0,
];

/// A cumulative latency histogram (Prometheus classic buckets).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last entry counts those
    /// above the largest bound.
    pub counts: [u64; LATENCY_BUCKETS_SECONDS.len() + 1],
    pub sum_nanos: u128,
}

impl LatencyHistogram {
    pub fn record(&mut self, nanos: u64) {
        let seconds = nanos as f64 / 1e9;
        let slot = LATENCY_BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.counts[slot] += 1;
        self.sum_nanos += u128::from(nanos);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }

    /// `(upper bound, cumulative count)` pairs, ending with `+Inf`.
    pub fn cumulative_buckets(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        LATENCY_BUCKETS_SECONDS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .map(|(bound, n)| {
                total += n;
                (bound, total)
            })
            .collect()
    }
}

/// Everything `/metrics` exports for one edge, cumulative since it appeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSeries {
    /// Service name of the caller (`client` label).
    pub client: String,
    /// Service name of the callee (`server` label).
    pub server: String,
    /// `service.namespace` of each side, empty when there is none.
    pub client_namespace: String,
    pub server_namespace: String,
    pub connection_type: ConnectionType,
    pub requests: u64,
    pub failed: u64,
    pub client_seconds: LatencyHistogram,
    pub server_seconds: LatencyHistogram,
}

/// The twin's own counters: what it paired, what it could not, what it shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwinCounters {
    pub spans_ingested: u64,
    /// CLIENT/PRODUCER spans matched with their SERVER/CONSUMER span.
    pub pairs_matched: u64,
    /// SERVER/CONSUMER spans whose parent in another service is not a CLIENT.
    pub pairs_internal_parent: u64,
    /// Caller spans turned into an edge to a virtual node.
    pub virtual_edges: u64,
    /// Caller spans that expired unmatched with no hint of their callee.
    pub unpaired_callers_expired: u64,
    /// Callee spans whose parent never arrived.
    pub unpaired_callees_expired: u64,
    /// Pending spans pushed out early because the pending limit was reached.
    pub pending_evicted: u64,
    /// Spans the node limit kept out of the graph.
    pub dropped_node_limit: u64,
    /// Pairs the edge limit kept out of the graph.
    pub dropped_edge_limit: u64,
    /// Calls dropped because a node expired while one of their halves was
    /// pending.
    pub stale_calls: u64,
    /// Spans older than the longest window, counted in totals only.
    pub late_spans: u64,
    /// Spans stamped later than the arrival clock, taken as arriving now.
    pub future_spans: u64,
    pub nodes_expired: u64,
    pub edges_expired: u64,
    /// Alarms raised by the detectors (one per signal per 10 s bucket).
    pub anomalies: u64,
    /// Spans waiting for their other half right now.
    pub pending_spans: u64,
}

/// What the twin publishes on every tick: the graph, its series, its counters.
#[derive(Debug, Clone, Default)]
pub struct TwinView {
    pub snapshot: Arc<GraphSnapshot>,
    pub series: Arc<Vec<EdgeSeries>>,
    pub counters: TwinCounters,
    /// The latest alarms, oldest first (at most a bounded number).
    pub anomalies: Arc<Vec<Anomaly>>,
    /// The incidents kept, oldest first (at most a bounded number).
    pub incidents: Arc<Vec<Incident>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut h = LatencyHistogram::default();
        h.record(1_000_000); // 1 ms
        h.record(30_000_000); // 30 ms
        h.record(20_000_000_000); // 20 s
        let buckets = h.cumulative_buckets();
        assert_eq!(buckets.len(), LATENCY_BUCKETS_SECONDS.len() + 1);
        assert_eq!(buckets[0], (0.002, 1));
        assert_eq!(buckets[5], (0.05, 2));
        assert_eq!(buckets[15], (15.0, 2));
        assert_eq!(buckets[16].1, 3);
        assert!(buckets[16].0.is_infinite());
        assert_eq!(h.count(), 3);
        assert!((h.sum_seconds() - 20.031).abs() < 1e-9);
    }
}
