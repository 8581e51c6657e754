//! The service graph as the web API and the browser see it.
//!
//! Latencies are in milliseconds, rates per second. Nodes and edges are
//! sorted by id, which is what [`crate::delta::diff`] relies on.

use serde::{Deserialize, Serialize};

use crate::anomaly::ActiveAnomaly;

/// The whole graph at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GraphSnapshot {
    /// Increases by one with every published change.
    pub version: u64,
    /// The twin's event-time clock when this snapshot was taken.
    pub at_unix_nanos: u64,
    pub nodes: Vec<NodeView>,
    pub edges: Vec<EdgeView>,
}

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Reports its own spans.
    Service,
    /// Named by `db.system` on its callers' spans.
    Database,
    /// Named by `messaging.system` on its callers' spans.
    Messaging,
    /// Named by `peer.service` or `server.address` on its callers' spans.
    External,
}

/// How an edge was learned, with the label values Tempo and the OTel
/// `servicegraph` connector use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionType {
    /// Both sides reported spans.
    Direct,
    /// Only the caller reported; the callee is a virtual node.
    VirtualNode,
    Database,
    MessagingSystem,
}

impl ConnectionType {
    /// The `connection_type` label value (empty for direct calls).
    pub fn label(self) -> &'static str {
        match self {
            Self::Direct => "",
            Self::VirtualNode => "virtual_node",
            Self::Database => "database",
            Self::MessagingSystem => "messaging_system",
        }
    }
}

/// Health from the last minute of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No requests in the last minute.
    Idle,
    Healthy,
    Degraded,
    Failing,
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// One view (last minute, last five minutes) of the requests a node served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NodeWindow {
    pub requests: u64,
    pub errors: u64,
    pub rate_per_second: f64,
    pub error_ratio: f64,
    pub latency_ms: Option<Quantiles>,
}

/// One view of the calls along an edge, timed from both ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EdgeWindow {
    pub requests: u64,
    pub errors: u64,
    pub rate_per_second: f64,
    pub error_ratio: f64,
    /// As the caller measured it (CLIENT/PRODUCER span durations).
    pub client_latency_ms: Option<Quantiles>,
    /// As the callee measured it (SERVER/CONSUMER span durations).
    pub server_latency_ms: Option<Quantiles>,
}

/// The sliding views the twin keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Windows<T> {
    pub last_1m: T,
    pub last_5m: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub id: String,
    pub name: String,
    pub namespace: Option<String>,
    pub kind: NodeKind,
    pub health: Health,
    /// `service.version` values seen (at most a few, sorted).
    pub versions: Vec<String>,
    /// `cloud.region` values seen (at most a few, sorted).
    pub regions: Vec<String>,
    /// Distinct `service.instance.id` values seen.
    pub instances: u32,
    pub first_seen_unix_nanos: u64,
    pub last_seen_unix_nanos: u64,
    pub total_requests: u64,
    pub total_errors: u64,
    pub windows: Windows<NodeWindow>,
    /// Signals alarming now (requests served, timed by the server side).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<ActiveAnomaly>,
    /// The requests served in each `cloud.region` the server side named
    /// (at most a few, sorted): what failover rules test.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub localities: Vec<LocalityView>,
}

/// A service's requests served in one locality (`cloud.region`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalityView {
    pub locality: String,
    pub windows: Windows<NodeWindow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeView {
    /// `source->target`.
    pub id: String,
    pub source: String,
    pub target: String,
    pub connection_type: ConnectionType,
    pub health: Health,
    pub first_seen_unix_nanos: u64,
    pub last_seen_unix_nanos: u64,
    pub total_requests: u64,
    pub total_failed: u64,
    /// Calls carried over mutual TLS; equal to `total_requests` when the
    /// edge is fully meshed.
    pub total_mtls: u64,
    pub windows: Windows<EdgeWindow>,
    /// Signals alarming now (calls, timed by the client side where it
    /// reports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<ActiveAnomaly>,
}

/// The id of the edge from `source` to `target`.
pub fn edge_id(source: &str, target: &str) -> String {
    format!("{source}->{target}")
}
