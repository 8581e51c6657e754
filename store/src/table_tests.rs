//! The tables beside the spans: history rows in, Parquet out by hour;
//! what does not fit is dropped and counted.

use std::fs::File;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meshtwin_model::graph::{EdgeView, GraphSnapshot, NodeView};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::history::{EDGES, edge_rows, node_rows};
use crate::table::{TableAppender, TableConfig};

const HOUR: u64 = 3_600_000_000_000;
/// 2027-01-15T08:00:00Z.
const T0: u64 = 1_800_000_000_000_000_000 / HOUR * HOUR;

fn snapshot(at: u64, edges: &[(&str, &str, u64)]) -> GraphSnapshot {
    let node = |id: &str| {
        let mut view: NodeView = serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "namespace": null, "kind": "service", "health": "healthy",
            "versions": [], "regions": [], "instances": 1, "first_seen_unix_nanos": 0,
            "last_seen_unix_nanos": 0, "total_requests": 0, "total_errors": 0,
            "windows": {"last_1m": {"requests": 0, "errors": 0, "rate_per_second": 0.0,
                "error_ratio": 0.0, "latency_ms": null},
                "last_5m": {"requests": 0, "errors": 0, "rate_per_second": 0.0,
                "error_ratio": 0.0, "latency_ms": null}}
        }))
        .unwrap();
        view.id = id.to_owned();
        view
    };
    let edges: Vec<EdgeView> = edges
        .iter()
        .map(|(source, target, total)| {
            serde_json::from_value(serde_json::json!({
                "id": format!("{source}->{target}"), "source": source, "target": target,
                "connection_type": "direct", "health": "healthy", "first_seen_unix_nanos": 0,
                "last_seen_unix_nanos": 0, "total_requests": total, "total_failed": 0,
                "total_mtls": 0,
                "windows": {"last_1m": {"requests": total, "errors": 0, "rate_per_second": 1.0,
                    "error_ratio": 0.0, "client_latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0},
                    "server_latency_ms": null},
                    "last_5m": {"requests": total, "errors": 0, "rate_per_second": 1.0,
                    "error_ratio": 0.0, "client_latency_ms": null, "server_latency_ms": null}}
            }))
            .unwrap()
        })
        .collect();
    GraphSnapshot {
        version: 1,
        at_unix_nanos: at,
        nodes: vec![node("a"), node("b")],
        edges,
    }
}

fn config(root: std::path::PathBuf) -> TableConfig {
    TableConfig {
        root,
        schema: EDGES.clone(),
        flush_every: Duration::from_secs(3600),
        retention_max_age_seconds: 100 * 365 * 24 * 3600,
        retention_max_bytes: u64::MAX,
        queue_batches: 16,
    }
}

#[test]
fn history_rows_are_written_by_hour_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("edges");
    let table = TableAppender::start(config(root.clone())).unwrap();
    assert!(table.append(edge_rows(&snapshot(T0 + 5, &[("a", "b", 7)])).unwrap()));
    assert!(table.append(edge_rows(&snapshot(T0 + HOUR, &[("a", "b", 9)])).unwrap()));
    table.flush().unwrap();
    let files = crate::segments::list(&root).unwrap();
    assert_eq!(files.len(), 2, "one file per hour: {files:?}");
    assert!(files[0].path.to_string_lossy().contains("hour=08"));
    assert!(files[1].path.to_string_lossy().contains("hour=09"));
    let batch = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0].path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.schema(), *EDGES);
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(table.counters().rows_written.load(Ordering::Relaxed), 2);
}

#[test]
fn rows_of_another_table_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let table = TableAppender::start(config(dir.path().join("edges"))).unwrap();
    let nodes = node_rows(&snapshot(T0, &[])).unwrap();
    assert!(!table.append(nodes));
    assert_eq!(table.counters().rows_dropped.load(Ordering::Relaxed), 2);
    table.flush().unwrap();
    assert!(
        crate::segments::list(&dir.path().join("edges"))
            .unwrap()
            .is_empty()
    );
}
