//! Renders the graph as the public snapshot and the Prometheus series.

use meshtwin_model::graph::{
    EdgeView, EdgeWindow, GraphSnapshot, Health, LocalityView, NodeView, NodeWindow, Windows,
    edge_id,
};
use meshtwin_model::series::EdgeSeries;

use crate::graph::{Edge, Node, ServiceGraph};
use crate::window::View;

/// Error ratio (last minute) from which a node or edge is degraded.
const DEGRADED_RATIO: f64 = 0.01;
/// Error ratio (last minute) from which a node or edge is failing.
const FAILING_RATIO: f64 = 0.05;
const MINUTE: u64 = 60_000_000_000;

fn health(requests: u64, error_ratio: f64) -> Health {
    match () {
        _ if requests == 0 => Health::Idle,
        _ if error_ratio >= FAILING_RATIO => Health::Failing,
        _ if error_ratio >= DEGRADED_RATIO => Health::Degraded,
        _ => Health::Healthy,
    }
}

fn node_window(view: &View<1>, now: u64, first_seen: u64) -> NodeWindow {
    NodeWindow {
        requests: view.requests,
        errors: view.errors,
        rate_per_second: view.rate_per_second(now, first_seen),
        error_ratio: view.error_ratio(),
        latency_ms: view.quantiles(0),
    }
}

fn edge_window(view: &View<2>, now: u64, first_seen: u64) -> EdgeWindow {
    EdgeWindow {
        requests: view.requests,
        errors: view.errors,
        rate_per_second: view.rate_per_second(now, first_seen),
        error_ratio: view.error_ratio(),
        client_latency_ms: view.quantiles(0),
        server_latency_ms: view.quantiles(1),
    }
}

fn node_view(node: &Node, now: u64) -> NodeView {
    let last_1m = node_window(&node.traffic.last_minute(now), now, node.first_seen);
    let last_5m = node_window(&node.traffic.last_five_minutes(now), now, node.first_seen);
    // A pure caller serves nothing but is not idle while it keeps calling.
    let active = last_1m.requests > 0 || node.last_seen + MINUTE >= now;
    let health = match health(last_1m.requests, last_1m.error_ratio) {
        Health::Idle if active => Health::Healthy,
        other => other,
    };
    let strings = |values: &[Box<str>]| values.iter().map(|v| v.to_string()).collect();
    NodeView {
        id: node.id.to_string(),
        name: node.name.to_string(),
        namespace: node.namespace.as_ref().map(|ns| ns.to_string()),
        kind: node.kind,
        health,
        versions: strings(&node.versions),
        regions: strings(&node.regions),
        instances: node.instances(),
        first_seen_unix_nanos: node.first_seen,
        last_seen_unix_nanos: node.last_seen,
        total_requests: node.requests,
        total_errors: node.errors,
        windows: Windows { last_1m, last_5m },
        anomalies: node.watch.active.clone(),
        localities: node
            .localities
            .iter()
            .map(|(locality, traffic)| LocalityView {
                locality: locality.to_string(),
                windows: Windows {
                    last_1m: node_window(&traffic.last_minute(now), now, node.first_seen),
                    last_5m: node_window(&traffic.last_five_minutes(now), now, node.first_seen),
                },
            })
            .collect(),
    }
}

fn edge_view(source: &Node, target: &Node, edge: &Edge, now: u64) -> EdgeView {
    let last_1m = edge_window(&edge.traffic.last_minute(now), now, edge.first_seen);
    let last_5m = edge_window(&edge.traffic.last_five_minutes(now), now, edge.first_seen);
    EdgeView {
        id: edge_id(&source.id, &target.id),
        source: source.id.to_string(),
        target: target.id.to_string(),
        connection_type: edge.connection_type,
        health: health(last_1m.requests, last_1m.error_ratio),
        first_seen_unix_nanos: edge.first_seen,
        last_seen_unix_nanos: edge.last_seen,
        total_requests: edge.requests,
        total_failed: edge.failed,
        total_mtls: edge.mtls,
        windows: Windows { last_1m, last_5m },
        anomalies: edge.watch.active.clone(),
    }
}

impl ServiceGraph {
    /// The graph at twin time `now`, sorted by id.
    pub(crate) fn snapshot(&self, version: u64, now: u64) -> GraphSnapshot {
        let mut nodes: Vec<NodeView> = self
            .graph
            .node_weights()
            .map(|node| node_view(node, now))
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let mut edges: Vec<EdgeView> = self
            .graph
            .edge_indices()
            .filter_map(|index| {
                let (from, to) = self.graph.edge_endpoints(index)?;
                Some(edge_view(
                    &self.graph[from],
                    &self.graph[to],
                    &self.graph[index],
                    now,
                ))
            })
            .collect();
        edges.sort_by(|a, b| a.id.cmp(&b.id));
        GraphSnapshot {
            version,
            at_unix_nanos: now,
            nodes,
            edges,
        }
    }

    /// Cumulative per-edge series, labelled by service name and namespace.
    pub(crate) fn series(&self) -> Vec<EdgeSeries> {
        let mut series: Vec<EdgeSeries> = self
            .graph
            .edge_indices()
            .filter_map(|index| {
                let (from, to) = self.graph.edge_endpoints(index)?;
                let edge = &self.graph[index];
                let (client, server) = (&self.graph[from], &self.graph[to]);
                let namespace = |node: &Node| node.namespace.as_deref().unwrap_or("").to_owned();
                Some(EdgeSeries {
                    client: client.name.to_string(),
                    server: server.name.to_string(),
                    client_namespace: namespace(client),
                    server_namespace: namespace(server),
                    connection_type: edge.connection_type,
                    requests: edge.requests,
                    failed: edge.failed,
                    client_seconds: edge.client_seconds.clone(),
                    server_seconds: edge.server_seconds.clone(),
                })
            })
            .collect();
        series.sort_by(|a, b| {
            let key = |s: &EdgeSeries| {
                (
                    s.client_namespace.clone(),
                    s.client.clone(),
                    s.server_namespace.clone(),
                    s.server.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        series
    }
}
