//! The graph as it was: the twin's snapshots kept in the `nodes` and
//! `edges` tables (every `[store] history_interval_seconds` while the graph
//! changes), read back at a point in time (`QueryEngine::graph_at`), and
//! two of them compared (`QueryEngine::graph_diff`, `diff`). Times are the
//! twin's event-time clock, in Unix nanoseconds.

use std::collections::BTreeMap;

use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::output::typed_rows;
use crate::{QueryEngine, QueryError, QueryRequest};

/// A node as a snapshot kept it (its last minute, and totals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastNode {
    pub node: String,
    pub name: String,
    pub namespace: Option<String>,
    pub kind: String,
    pub health: String,
    pub instances: u32,
    pub versions: String,
    pub regions: String,
    pub requests_1m: u64,
    pub errors_1m: u64,
    pub rate_per_second: f64,
    pub error_ratio: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub total_requests: u64,
    pub total_errors: u64,
}

/// An edge as a snapshot kept it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastEdge {
    pub source: String,
    pub target: String,
    pub connection_type: String,
    pub health: String,
    pub requests_1m: u64,
    pub errors_1m: u64,
    pub rate_per_second: f64,
    pub error_ratio: f64,
    pub client_p50_ms: Option<f64>,
    pub client_p90_ms: Option<f64>,
    pub client_p99_ms: Option<f64>,
    pub server_p50_ms: Option<f64>,
    pub server_p90_ms: Option<f64>,
    pub server_p99_ms: Option<f64>,
    pub total_requests: u64,
    pub total_failed: u64,
    pub total_mtls: u64,
}

impl PastEdge {
    /// `source->target`, as the live graph names edges.
    pub fn id(&self) -> String {
        format!("{}->{}", self.source, self.target)
    }

    /// The p99 callers saw, or else the one the callee reported.
    pub fn p99_ms(&self) -> Option<f64> {
        self.client_p99_ms.or(self.server_p99_ms)
    }
}

/// The graph of the last snapshot kept at or before `requested`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PastGraph {
    pub requested_unix_nanos: i64,
    /// When that snapshot was taken.
    pub at_unix_nanos: i64,
    pub nodes: Vec<PastNode>,
    pub edges: Vec<PastEdge>,
}

/// What history there is: the first and last snapshot kept, and how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRange {
    pub first_unix_nanos: Option<i64>,
    pub last_unix_nanos: Option<i64>,
    pub snapshots: i64,
}

const NODE_COLUMNS: &str = "node, name, namespace, kind, health, instances, versions, regions, \
    requests_1m, errors_1m, rate_per_second, error_ratio, p50_ms, p90_ms, p99_ms, \
    total_requests, total_errors";
const EDGE_COLUMNS: &str = "source, target, connection_type, health, requests_1m, errors_1m, \
    rate_per_second, error_ratio, client_p50_ms, client_p90_ms, client_p99_ms, server_p50_ms, \
    server_p90_ms, server_p99_ms, total_requests, total_failed, total_mtls";

/// The most nodes or edges one snapshot returns (the twin's own caps are
/// far below).
const MAX_ELEMENTS: usize = 1_000_000;

fn time(unix_nanos: i64) -> ScalarValue {
    ScalarValue::TimestampNanosecond(Some(unix_nanos), Some("UTC".into()))
}

impl QueryEngine {
    async fn rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: String,
        params: Vec<ScalarValue>,
    ) -> Result<Vec<T>, QueryError> {
        let result = self
            .run(QueryRequest {
                sql,
                max_rows: Some(MAX_ELEMENTS),
                timeout: None,
                params,
            })
            .await?;
        typed_rows(&result)
    }

    /// The first and last snapshots kept.
    pub async fn history_range(&self) -> Result<HistoryRange, QueryError> {
        let sql = "SELECT CAST(min(at) AS BIGINT) AS first_unix_nanos, \
                   CAST(max(at) AS BIGINT) AS last_unix_nanos, \
                   count(DISTINCT at) AS snapshots FROM nodes";
        let mut rows: Vec<HistoryRange> = self.rows(sql.to_owned(), Vec::new()).await?;
        rows.pop()
            .ok_or_else(|| QueryError::Failed("no answer about the history".to_owned()))
    }

    /// The graph as the last snapshot at or before `at` kept it; `None`
    /// when no snapshot is that old.
    pub async fn graph_at(&self, at: i64) -> Result<Option<PastGraph>, QueryError> {
        #[derive(Deserialize)]
        struct Latest {
            at: Option<i64>,
        }
        let latest: Vec<Latest> = self
            .rows(
                "SELECT CAST(max(at) AS BIGINT) AS at FROM nodes WHERE at <= $1".to_owned(),
                vec![time(at)],
            )
            .await?;
        let Some(snapshot) = latest.into_iter().next().and_then(|l| l.at) else {
            return Ok(None);
        };
        let nodes = self.rows(
            format!("SELECT {NODE_COLUMNS} FROM nodes WHERE at = $1 ORDER BY node"),
            vec![time(snapshot)],
        );
        let edges = self.rows(
            format!("SELECT {EDGE_COLUMNS} FROM edges WHERE at = $1 ORDER BY source, target"),
            vec![time(snapshot)],
        );
        let (nodes, edges) = futures_util::future::try_join(nodes, edges).await?;
        Ok(Some(PastGraph {
            requested_unix_nanos: at,
            at_unix_nanos: snapshot,
            nodes,
            edges,
        }))
    }

    /// What changed between the graphs at `from` and at `to`; `None` when
    /// either has no snapshot.
    pub async fn graph_diff(
        &self,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Option<GraphDiff>, QueryError> {
        let (before, after) =
            futures_util::future::try_join(self.graph_at(from), self.graph_at(to)).await?;
        Ok(before
            .zip(after)
            .map(|(before, after)| diff(&before, &after, limit)))
    }
}

/// An edge by its ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeKey {
    pub id: String,
    pub source: String,
    pub target: String,
}

/// Which way a metric moved, as an SRE reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// More errors, slower, or less traffic.
    Degraded,
    /// Fewer errors or faster.
    Improved,
    /// More traffic.
    Surged,
}

/// One metric of one node or edge that moved past its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// `node` or `edge`.
    pub element: &'static str,
    /// The node's ID, or the edge's `source->target`.
    pub id: String,
    /// `error_ratio`, `p99_ms` or `rate_per_second`.
    pub metric: &'static str,
    pub before: f64,
    pub after: f64,
    pub verdict: Verdict,
    /// How many times its threshold the change is: 1 percentage point of
    /// errors, a p99 1.5 times higher or lower, traffic doubled or halved.
    pub score: f64,
}

/// The graph at `to` against the graph at `from`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphDiff {
    pub from_unix_nanos: i64,
    pub from_snapshot_unix_nanos: i64,
    pub to_unix_nanos: i64,
    pub to_snapshot_unix_nanos: i64,
    /// Active at `to` (calls in the minute before) and not at `from`.
    pub nodes_added: Vec<String>,
    /// Active at `from` and not at `to`.
    pub nodes_removed: Vec<String>,
    pub edges_added: Vec<EdgeKey>,
    pub edges_removed: Vec<EdgeKey>,
    /// The metrics that moved most, largest score first.
    pub changes: Vec<Change>,
    /// Every element's worst verdict (`degraded` over the others).
    pub verdicts: BTreeMap<String, Verdict>,
}

/// One element's last-minute figures, for comparing.
#[derive(Clone, Copy)]
struct Figures {
    requests: u64,
    error_ratio: f64,
    p99_ms: Option<f64>,
    rate: f64,
}

fn node_figures(node: &PastNode) -> Figures {
    Figures {
        requests: node.requests_1m,
        error_ratio: node.error_ratio,
        p99_ms: node.p99_ms,
        rate: node.rate_per_second,
    }
}

fn edge_figures(edge: &PastEdge) -> Figures {
    Figures {
        requests: edge.requests_1m,
        error_ratio: edge.error_ratio,
        p99_ms: edge.p99_ms(),
        rate: edge.rate_per_second,
    }
}

/// The changes between two figures of one element that pass a threshold.
fn changes(element: &'static str, id: &str, before: Figures, after: Figures) -> Vec<Change> {
    let mut found = Vec::new();
    let mut push = |metric, before: f64, after: f64, score: f64, verdict| {
        if score >= 1.0 {
            found.push(Change {
                element,
                id: id.to_owned(),
                metric,
                before,
                after,
                verdict,
                score,
            });
        }
    };
    let (e0, e1) = (before.error_ratio, after.error_ratio);
    let worse = |up: bool| {
        if up {
            Verdict::Degraded
        } else {
            Verdict::Improved
        }
    };
    push(
        "error_ratio",
        e0,
        e1,
        (e1 - e0).abs() * 100.0,
        worse(e1 > e0),
    );
    if let (Some(p0), Some(p1)) = (before.p99_ms, after.p99_ms) {
        // Below a millisecond, jitter is not news.
        let score = ((p1.max(1.0)) / (p0.max(1.0))).log2().abs() / 1.5f64.log2();
        push("p99_ms", p0, p1, score, worse(p1 > p0));
    }
    let (r0, r1) = (before.rate, after.rate);
    if r0 > 0.0 && r1 > 0.0 {
        let verdict = if r1 < r0 {
            Verdict::Degraded
        } else {
            Verdict::Surged
        };
        push("rate_per_second", r0, r1, (r1 / r0).log2().abs(), verdict);
    }
    found
}

/// Sorted keys of the active elements of `items`.
fn active<T>(
    items: &[T],
    key: impl Fn(&T) -> String,
    figures: impl Fn(&T) -> Figures,
) -> BTreeMap<String, (&T, Figures)> {
    items
        .iter()
        .map(|item| (key(item), (item, figures(item))))
        .filter(|(_, (_, f))| f.requests > 0)
        .collect()
}

/// `after` against `before`: what appeared, vanished, and moved most.
pub fn diff(before: &PastGraph, after: &PastGraph, limit: usize) -> GraphDiff {
    let nodes0 = active(&before.nodes, |n| n.node.clone(), node_figures);
    let nodes1 = active(&after.nodes, |n| n.node.clone(), node_figures);
    let edges0 = active(&before.edges, PastEdge::id, edge_figures);
    let edges1 = active(&after.edges, PastEdge::id, edge_figures);
    let key = |edge: &PastEdge| EdgeKey {
        id: edge.id(),
        source: edge.source.clone(),
        target: edge.target.clone(),
    };
    let mut all = Vec::new();
    for (id, (_, f1)) in &nodes1 {
        if let Some((_, f0)) = nodes0.get(id) {
            all.extend(changes("node", id, *f0, *f1));
        }
    }
    for (id, (_, f1)) in &edges1 {
        if let Some((_, f0)) = edges0.get(id) {
            all.extend(changes("edge", id, *f0, *f1));
        }
    }
    all.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    let mut verdicts = BTreeMap::new();
    for change in &all {
        let verdict = verdicts.entry(change.id.clone()).or_insert(change.verdict);
        if change.verdict == Verdict::Degraded {
            *verdict = Verdict::Degraded;
        }
    }
    all.truncate(limit);
    GraphDiff {
        from_unix_nanos: before.requested_unix_nanos,
        from_snapshot_unix_nanos: before.at_unix_nanos,
        to_unix_nanos: after.requested_unix_nanos,
        to_snapshot_unix_nanos: after.at_unix_nanos,
        nodes_added: nodes1
            .keys()
            .filter(|id| !nodes0.contains_key(*id))
            .cloned()
            .collect(),
        nodes_removed: nodes0
            .keys()
            .filter(|id| !nodes1.contains_key(*id))
            .cloned()
            .collect(),
        edges_added: edges1
            .iter()
            .filter(|(id, _)| !edges0.contains_key(*id))
            .map(|(_, (edge, _))| key(edge))
            .collect(),
        edges_removed: edges0
            .iter()
            .filter(|(id, _)| !edges1.contains_key(*id))
            .map(|(_, (edge, _))| key(edge))
            .collect(),
        changes: all,
        verdicts,
    }
}

#[cfg(test)]
#[path = "past_graph_tests.rs"]
mod tests;
