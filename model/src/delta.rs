//! Versioned changes between two snapshots, and the websocket message that
//! carries snapshots and deltas.
//!
//! A delta takes a snapshot at `from_version` to `to_version`; a client that
//! holds any other version must ask for a fresh snapshot instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::anomaly::Anomaly;
use crate::graph::{EdgeView, GraphSnapshot, NodeView};
use crate::incident::Incident;

/// The change from one snapshot version to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct GraphDelta {
    pub from_version: u64,
    pub to_version: u64,
    pub at_unix_nanos: u64,
    /// New nodes and nodes whose view changed, whole.
    pub upsert_nodes: Vec<NodeView>,
    pub remove_nodes: Vec<String>,
    pub upsert_edges: Vec<EdgeView>,
    pub remove_edges: Vec<String>,
    /// Alarms the detectors raised since the previous delta, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<Anomaly>,
    /// Incidents opened, updated or resolved since the previous delta, whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<Incident>,
}

impl GraphDelta {
    /// True when applying it changes nothing but the version.
    pub fn is_empty(&self) -> bool {
        self.upsert_nodes.is_empty()
            && self.remove_nodes.is_empty()
            && self.upsert_edges.is_empty()
            && self.remove_edges.is_empty()
            && self.anomalies.is_empty()
            && self.incidents.is_empty()
    }
}

/// What the websocket `/api/v1/stream` sends: first a snapshot and the
/// detections, then deltas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamMessage {
    Snapshot(GraphSnapshot),
    /// Right after every snapshot: the latest alarms and the incidents
    /// kept, oldest first.
    Detections {
        anomalies: Vec<Anomaly>,
        incidents: Vec<Incident>,
    },
    Delta(GraphDelta),
}

/// A delta that does not fit the snapshot it was applied to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delta from version {delta_from} does not apply to snapshot version {snapshot}")]
pub struct VersionGap {
    pub snapshot: u64,
    pub delta_from: u64,
}

/// The delta that turns `prev` into `next` (both sorted by id).
pub fn diff(prev: &GraphSnapshot, next: &GraphSnapshot) -> GraphDelta {
    let (upsert_nodes, remove_nodes) = diff_sorted(&prev.nodes, &next.nodes, |n| &n.id);
    let (upsert_edges, remove_edges) = diff_sorted(&prev.edges, &next.edges, |e| &e.id);
    GraphDelta {
        from_version: prev.version,
        to_version: next.version,
        at_unix_nanos: next.at_unix_nanos,
        upsert_nodes,
        remove_nodes,
        upsert_edges,
        remove_edges,
        anomalies: Vec::new(),
        incidents: Vec::new(),
    }
}

/// Applies `delta` to `snapshot`, keeping nodes and edges sorted by id.
pub fn apply(snapshot: &mut GraphSnapshot, delta: &GraphDelta) -> Result<(), VersionGap> {
    if snapshot.version != delta.from_version {
        return Err(VersionGap {
            snapshot: snapshot.version,
            delta_from: delta.from_version,
        });
    }
    apply_sorted(
        &mut snapshot.nodes,
        &delta.upsert_nodes,
        &delta.remove_nodes,
        |n| &n.id,
    );
    apply_sorted(
        &mut snapshot.edges,
        &delta.upsert_edges,
        &delta.remove_edges,
        |e| &e.id,
    );
    snapshot.version = delta.to_version;
    snapshot.at_unix_nanos = delta.at_unix_nanos;
    Ok(())
}

fn diff_sorted<T: Clone + PartialEq>(
    prev: &[T],
    next: &[T],
    id: impl Fn(&T) -> &String,
) -> (Vec<T>, Vec<String>) {
    let old: BTreeMap<&String, &T> = prev.iter().map(|item| (id(item), item)).collect();
    let upserts = next
        .iter()
        .filter(|item| old.get(id(item)) != Some(item))
        .cloned()
        .collect();
    let new: BTreeMap<&String, ()> = next.iter().map(|item| (id(item), ())).collect();
    let removals = prev
        .iter()
        .map(&id)
        .filter(|key| !new.contains_key(key))
        .cloned()
        .collect();
    (upserts, removals)
}

fn apply_sorted<T: Clone>(
    items: &mut Vec<T>,
    upserts: &[T],
    removals: &[String],
    id: impl Fn(&T) -> &String,
) {
    let mut by_id: BTreeMap<String, T> = items
        .drain(..)
        .map(|item| (id(&item).clone(), item))
        .collect();
    for key in removals {
        by_id.remove(key);
    }
    for item in upserts {
        by_id.insert(id(item).clone(), item.clone());
    }
    items.extend(by_id.into_values());
}

#[cfg(test)]
mod tests;
