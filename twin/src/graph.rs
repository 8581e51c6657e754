//! The service graph itself: petgraph nodes and edges with their traffic.
//!
//! Nodes are services (from span resources) and virtual nodes (databases,
//! brokers, external APIs named on their callers' spans). Edges are
//! caller → callee. Both keep totals and sliding windows, and expire when
//! idle for longer than the configured time.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};

use meshtwin_model::graph::{ConnectionType, NodeKind};
use meshtwin_model::series::LatencyHistogram;
use meshtwin_model::span::{PeerHint, ServiceIdentity};

use crate::anomalies::SeriesWatch;
use crate::window::Traffic;

/// How many distinct versions and regions a node lists.
const MAX_LABELS: usize = 8;
/// How many distinct instance ids a node counts.
const MAX_INSTANCES: usize = 4096;

/// A node as pending call halves remember it: its index and the serial it
/// was created with, so an index reused after the node expired is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeRef {
    index: NodeIndex,
    serial: u64,
}

pub(crate) struct Node {
    serial: u64,
    pub(crate) id: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) namespace: Option<Box<str>>,
    pub(crate) kind: NodeKind,
    pub(crate) versions: Vec<Box<str>>,
    pub(crate) regions: Vec<Box<str>>,
    instance_ids: Vec<Box<str>>,
    last_identity: Option<Arc<ServiceIdentity>>,
    pub(crate) first_seen: u64,
    pub(crate) last_seen: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Requests served, timed by the server side.
    pub(crate) traffic: Traffic<1>,
    /// The same, per region the server side named (at most `MAX_LABELS`,
    /// sorted).
    pub(crate) localities: Vec<(Box<str>, Traffic<1>)>,
    pub(crate) watch: SeriesWatch,
}

impl Node {
    fn new(id: &str, name: &str, namespace: Option<&str>, kind: NodeKind, at: u64) -> Self {
        Self {
            serial: 0,
            id: id.into(),
            name: name.into(),
            namespace: namespace.map(Into::into),
            kind,
            versions: Vec::new(),
            regions: Vec::new(),
            instance_ids: Vec::new(),
            last_identity: None,
            first_seen: at,
            last_seen: at,
            requests: 0,
            errors: 0,
            traffic: Traffic::new(),
            localities: Vec::new(),
            watch: SeriesWatch::default(),
        }
    }

    pub(crate) fn instances(&self) -> u32 {
        self.instance_ids.len() as u32
    }

    fn touch(&mut self, at: u64) {
        self.first_seen = self.first_seen.min(at);
        self.last_seen = self.last_seen.max(at);
    }

    fn learn(&mut self, identity: &Arc<ServiceIdentity>) {
        if let Some(last) = &self.last_identity
            && (Arc::ptr_eq(last, identity) || **last == **identity)
        {
            return;
        }
        insert_sorted(&mut self.versions, identity.version.as_deref(), MAX_LABELS);
        insert_sorted(&mut self.regions, identity.region.as_deref(), MAX_LABELS);
        insert_sorted(
            &mut self.instance_ids,
            identity.instance_id.as_deref(),
            MAX_INSTANCES,
        );
        self.last_identity = Some(identity.clone());
    }
}

fn insert_sorted(values: &mut Vec<Box<str>>, value: Option<&str>, cap: usize) {
    let Some(value) = value else { return };
    if let Err(at) = values.binary_search_by(|v| (**v).cmp(value))
        && values.len() < cap
    {
        values.insert(at, value.into());
    }
}

pub(crate) struct Edge {
    pub(crate) connection_type: ConnectionType,
    pub(crate) first_seen: u64,
    pub(crate) last_seen: u64,
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    /// Calls carried over mutual TLS.
    pub(crate) mtls: u64,
    pub(crate) client_seconds: LatencyHistogram,
    pub(crate) server_seconds: LatencyHistogram,
    /// Calls, timed by the client side (0) and the server side (1).
    pub(crate) traffic: Traffic<2>,
    pub(crate) watch: SeriesWatch,
}

/// One request a node served.
pub(crate) struct Served<'a> {
    pub(crate) at: u64,
    pub(crate) nanos: u64,
    pub(crate) failed: bool,
    pub(crate) locality: Option<&'a str>,
}

/// One observed call along an edge.
pub(crate) struct CallRecord {
    pub(crate) at: u64,
    pub(crate) failed: bool,
    pub(crate) mtls: bool,
    pub(crate) client_nanos: Option<u64>,
    pub(crate) server_nanos: Option<u64>,
}

/// Why a call could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitHit {
    Nodes,
    Edges,
    /// A node expired while one of the call's halves was pending.
    Expired,
}

/// How many recently used service identities the graph remembers.
const RECENT_SERVICES: usize = 8;

pub(crate) struct ServiceGraph {
    pub(crate) graph: StableDiGraph<Node, Edge>,
    by_id: HashMap<Box<str>, NodeIndex, RandomState>,
    /// Ingest shares one identity among the spans of a resource, so most
    /// lookups are answered by comparing pointers, not hashing names.
    recent: Vec<(Arc<ServiceIdentity>, NodeIndex)>,
    recent_next: usize,
    next_serial: u64,
    edges: HashMap<(NodeIndex, NodeIndex), EdgeIndex, RandomState>,
    max_nodes: usize,
    max_edges: usize,
}

impl ServiceGraph {
    pub(crate) fn new(max_nodes: usize, max_edges: usize) -> Self {
        Self {
            graph: StableDiGraph::default(),
            by_id: HashMap::default(),
            recent: Vec::with_capacity(RECENT_SERVICES),
            recent_next: 0,
            next_serial: 0,
            edges: HashMap::default(),
            max_nodes,
            max_edges,
        }
    }

    /// The node of a span-reporting service, created on first sight, and
    /// its metadata (versions, regions, instances) updated.
    pub(crate) fn service(
        &mut self,
        identity: &Arc<ServiceIdentity>,
        at: u64,
    ) -> Result<NodeIndex, LimitHit> {
        let cached = self
            .recent
            .iter()
            .find(|(known, _)| Arc::ptr_eq(known, identity))
            .map(|(_, index)| *index);
        let index = match cached {
            Some(index) => index,
            None => {
                let index = match self.by_id.get(&*identity.node_id) {
                    Some(index) => *index,
                    None => self.add(Node::new(
                        &identity.node_id,
                        &identity.name,
                        identity.namespace.as_deref(),
                        NodeKind::Service,
                        at,
                    ))?,
                };
                self.remember(identity, index);
                index
            }
        };
        let node = &mut self.graph[index];
        node.touch(at);
        node.learn(identity);
        Ok(index)
    }

    fn remember(&mut self, identity: &Arc<ServiceIdentity>, index: NodeIndex) {
        let entry = (identity.clone(), index);
        if self.recent.len() < RECENT_SERVICES {
            self.recent.push(entry);
        } else {
            self.recent[self.recent_next] = entry;
            self.recent_next = (self.recent_next + 1) % RECENT_SERVICES;
        }
    }

    /// The node a hint names: an existing node of that id (for a service
    /// name or address, also the service of that name in the caller's
    /// namespace, as a short DNS name resolves), else a new virtual node.
    pub(crate) fn virtual_node(
        &mut self,
        hint: &PeerHint,
        caller_namespace: Option<&str>,
        at: u64,
    ) -> Result<NodeIndex, LimitHit> {
        let name = hint.node_name();
        let in_namespace = match (hint, caller_namespace) {
            (PeerHint::Service(_) | PeerHint::Address(_), Some(namespace)) => {
                let host = name.split(':').next().unwrap_or(name);
                Some(format!("{namespace}/{host}"))
            }
            _ => None,
        };
        let existing = self
            .by_id
            .get(name)
            .or_else(|| in_namespace.as_deref().and_then(|id| self.by_id.get(id)));
        if let Some(&index) = existing {
            self.graph[index].touch(at);
            return Ok(index);
        }
        let kind = match hint {
            PeerHint::Database { .. } => NodeKind::Database,
            PeerHint::Messaging { .. } => NodeKind::Messaging,
            PeerHint::Service(_) | PeerHint::Address(_) => NodeKind::External,
        };
        self.add(Node::new(name, name, None, kind, at))
    }

    fn add(&mut self, mut node: Node) -> Result<NodeIndex, LimitHit> {
        if self.by_id.len() >= self.max_nodes {
            return Err(LimitHit::Nodes);
        }
        self.next_serial += 1;
        node.serial = self.next_serial;
        let id = node.id.clone();
        let index = self.graph.add_node(node);
        self.by_id.insert(id, index);
        Ok(index)
    }

    /// Whether nodes `a` and `b` (by id) are the same node or joined by an
    /// edge either way.
    pub(crate) fn connected(&self, a: &str, b: &str) -> bool {
        if a == b {
            return true;
        }
        let (Some(&a), Some(&b)) = (self.by_id.get(a), self.by_id.get(b)) else {
            return false;
        };
        self.edges.contains_key(&(a, b)) || self.edges.contains_key(&(b, a))
    }

    pub(crate) fn node_ref(&self, index: NodeIndex) -> NodeRef {
        NodeRef {
            index,
            serial: self.graph[index].serial,
        }
    }

    /// The node a half remembered, unless it has expired since.
    pub(crate) fn resolve(&self, node: NodeRef) -> Option<NodeIndex> {
        let current = self.graph.node_weight(node.index)?;
        (current.serial == node.serial).then_some(node.index)
    }

    /// Marks a node seen at event time `at`.
    pub(crate) fn touch(&mut self, index: NodeIndex, at: u64) {
        self.graph[index].touch(at);
    }

    /// Counts a request the node served, in `locality` when the server
    /// side named one.
    pub(crate) fn record_served(&mut self, node: NodeIndex, served: Served<'_>) {
        let Served {
            at,
            nanos,
            failed,
            locality,
        } = served;
        let node = &mut self.graph[node];
        node.touch(at);
        node.requests += 1;
        node.errors += u64::from(failed);
        node.traffic.record(at, failed, [Some(nanos)]);
        let Some(locality) = locality else { return };
        let slot = match node
            .localities
            .binary_search_by(|(l, _)| (**l).cmp(locality))
        {
            Ok(slot) => slot,
            Err(slot) if node.localities.len() < MAX_LABELS => {
                node.localities
                    .insert(slot, (locality.into(), Traffic::new()));
                slot
            }
            Err(_) => return,
        };
        node.localities[slot].1.record(at, failed, [Some(nanos)]);
    }

    /// Counts a call along `from → to`, creating the edge on first sight.
    pub(crate) fn record_call(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        connection_type: ConnectionType,
        call: CallRecord,
    ) -> Result<(), LimitHit> {
        let index = match self.edges.get(&(from, to)) {
            Some(index) => *index,
            None => {
                if self.edges.len() >= self.max_edges {
                    return Err(LimitHit::Edges);
                }
                let edge = Edge {
                    connection_type,
                    first_seen: call.at,
                    last_seen: call.at,
                    requests: 0,
                    failed: 0,
                    mtls: 0,
                    client_seconds: LatencyHistogram::default(),
                    server_seconds: LatencyHistogram::default(),
                    traffic: Traffic::new(),
                    watch: SeriesWatch::default(),
                };
                let index = self.graph.add_edge(from, to, edge);
                self.edges.insert((from, to), index);
                index
            }
        };
        self.graph[from].touch(call.at);
        self.graph[to].touch(call.at);
        let edge = &mut self.graph[index];
        edge.first_seen = edge.first_seen.min(call.at);
        edge.last_seen = edge.last_seen.max(call.at);
        edge.requests += 1;
        edge.failed += u64::from(call.failed);
        edge.mtls += u64::from(call.mtls);
        if let Some(nanos) = call.client_nanos {
            edge.client_seconds.record(nanos);
        }
        if let Some(nanos) = call.server_nanos {
            edge.server_seconds.record(nanos);
        }
        edge.traffic
            .record(call.at, call.failed, [call.client_nanos, call.server_nanos]);
        Ok(())
    }

    /// Removes edges, then nodes, not seen since `cutoff`; returns how many
    /// of each went.
    pub(crate) fn expire_idle(&mut self, cutoff: u64) -> (u64, u64) {
        let stale_edges: Vec<EdgeIndex> = self
            .graph
            .edge_references()
            .filter(|e| e.weight().last_seen < cutoff)
            .map(|e| e.id())
            .collect();
        for index in &stale_edges {
            if let Some((from, to)) = self.graph.edge_endpoints(*index) {
                self.edges.remove(&(from, to));
            }
            self.graph.remove_edge(*index);
        }
        let stale_nodes: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|i| self.graph[*i].last_seen < cutoff)
            .collect();
        for index in &stale_nodes {
            // Removing a node also removes any edge still attached to it.
            for edge in self
                .graph
                .edges_directed(*index, petgraph::Direction::Outgoing)
            {
                self.edges.remove(&(edge.source(), edge.target()));
            }
            for edge in self
                .graph
                .edges_directed(*index, petgraph::Direction::Incoming)
            {
                self.edges.remove(&(edge.source(), edge.target()));
            }
            if let Some(node) = self.graph.remove_node(*index) {
                self.by_id.remove(&node.id);
            }
        }
        if !stale_nodes.is_empty() {
            self.recent.clear();
        }
        (stale_nodes.len() as u64, stale_edges.len() as u64)
    }
}
