use proptest::prelude::*;

use super::*;
use crate::graph::{
    ConnectionType, EdgeView, EdgeWindow, Health, NodeKind, NodeView, NodeWindow, Windows,
};

fn node(id: &str, requests: u64) -> NodeView {
    NodeView {
        id: id.to_owned(),
        name: id.to_owned(),
        namespace: None,
        kind: NodeKind::Service,
        health: Health::Healthy,
        versions: vec![],
        regions: vec![],
        instances: 1,
        first_seen_unix_nanos: 0,
        last_seen_unix_nanos: 0,
        total_requests: requests,
        total_errors: 0,
        windows: Windows {
            last_1m: NodeWindow {
                requests,
                ..NodeWindow::default()
            },
            last_5m: NodeWindow::default(),
        },
        anomalies: vec![],
        localities: vec![],
    }
}

fn edge(source: &str, target: &str, requests: u64) -> EdgeView {
    EdgeView {
        id: crate::graph::edge_id(source, target),
        source: source.to_owned(),
        target: target.to_owned(),
        connection_type: ConnectionType::Direct,
        health: Health::Healthy,
        first_seen_unix_nanos: 0,
        last_seen_unix_nanos: 0,
        total_requests: requests,
        total_failed: 0,
        total_mtls: 0,
        windows: Windows {
            last_1m: EdgeWindow::default(),
            last_5m: EdgeWindow::default(),
        },
        anomalies: vec![],
    }
}

/// A snapshot from a map of node names to request counts, with an edge
/// between every pair of consecutive nodes.
fn snapshot(version: u64, nodes: &BTreeMap<String, u64>) -> GraphSnapshot {
    let names: Vec<&String> = nodes.keys().collect();
    let mut edges: Vec<EdgeView> = names
        .windows(2)
        .map(|pair| edge(pair[0], pair[1], nodes[pair[0]]))
        .collect();
    edges.sort_by(|a, b| a.id.cmp(&b.id));
    GraphSnapshot {
        version,
        at_unix_nanos: version * 1000,
        nodes: nodes.iter().map(|(id, n)| node(id, *n)).collect(),
        edges,
    }
}

fn graph_strategy() -> impl Strategy<Value = BTreeMap<String, u64>> {
    prop::collection::btree_map("[a-h]", 0u64..4, 0..8)
}

proptest! {
    #[test]
    fn apply_of_diff_reproduces_the_next_snapshot(a in graph_strategy(), b in graph_strategy()) {
        let prev = snapshot(7, &a);
        let next = snapshot(8, &b);
        let delta = diff(&prev, &next);
        let mut rebuilt = prev.clone();
        apply(&mut rebuilt, &delta).unwrap();
        prop_assert_eq!(rebuilt, next);
    }

    #[test]
    fn diff_of_identical_snapshots_is_empty(a in graph_strategy()) {
        let prev = snapshot(1, &a);
        let mut next = prev.clone();
        next.version = 2;
        prop_assert!(diff(&prev, &next).is_empty());
    }
}

#[test]
fn a_delta_for_another_version_is_refused() {
    let mut snap = snapshot(3, &BTreeMap::new());
    let delta = GraphDelta {
        from_version: 4,
        to_version: 5,
        ..GraphDelta::default()
    };
    assert_eq!(
        apply(&mut snap, &delta),
        Err(VersionGap {
            snapshot: 3,
            delta_from: 4
        })
    );
}

#[test]
fn stream_messages_are_tagged_by_type() {
    let msg = StreamMessage::Delta(GraphDelta {
        from_version: 1,
        to_version: 2,
        ..GraphDelta::default()
    });
    let json = serde_json::to_value(&msg).unwrap();
    assert_eq!(json["type"], "delta");
    assert_eq!(json["from_version"], 1);
    let back: StreamMessage = serde_json::from_value(json).unwrap();
    assert_eq!(back, msg);
}
