//! The twin's history as rows: every snapshot's edges (the `edges` table)
//! and nodes (`nodes`), with the last minute's rate, errors and latency.

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    Float64Builder, StringBuilder, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use meshtwin_model::graph::{GraphSnapshot, Quantiles};

use crate::rows::timestamp;

fn counter(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
}

fn ratio(name: &str) -> Field {
    Field::new(name, DataType::Float64, false)
}

fn quantile_fields(prefix: &str) -> [Field; 3] {
    ["p50", "p90", "p99"].map(|q| Field::new(format!("{prefix}{q}_ms"), DataType::Float64, true))
}

/// The `edges` table: one row per edge per snapshot.
pub static EDGES: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("at", timestamp(), false),
        Field::new("source", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("connection_type", DataType::Utf8, false),
        Field::new("health", DataType::Utf8, false),
        counter("requests_1m"),
        counter("errors_1m"),
        ratio("rate_per_second"),
        ratio("error_ratio"),
    ];
    fields.extend(quantile_fields("client_"));
    fields.extend(quantile_fields("server_"));
    fields.extend([
        counter("total_requests"),
        counter("total_failed"),
        counter("total_mtls"),
    ]);
    Arc::new(Schema::new(fields))
});

/// The `nodes` table: one row per node per snapshot.
pub static NODES: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("at", timestamp(), false),
        Field::new("node", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("namespace", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new("health", DataType::Utf8, false),
        Field::new("instances", DataType::UInt32, false),
        Field::new("versions", DataType::Utf8, false),
        Field::new("regions", DataType::Utf8, false),
        counter("requests_1m"),
        counter("errors_1m"),
        ratio("rate_per_second"),
        ratio("error_ratio"),
    ];
    fields.extend(quantile_fields(""));
    fields.extend([counter("total_requests"), counter("total_errors")]);
    Arc::new(Schema::new(fields))
});

/// The name serde gives a unit enum variant (`snake_case`).
fn label<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Default)]
struct QuantileColumns([Float64Builder; 3]);

impl QuantileColumns {
    fn push(&mut self, q: Option<&Quantiles>) {
        let values = q.map(|q| [q.p50, q.p90, q.p99]);
        for (i, column) in self.0.iter_mut().enumerate() {
            column.append_option(values.map(|v| v[i]));
        }
    }

    fn finish(&mut self) -> [ArrayRef; 3] {
        self.0.each_mut().map(|c| Arc::new(c.finish()) as ArrayRef)
    }
}

/// The snapshot's edges as rows of `edges`.
pub fn edge_rows(snapshot: &GraphSnapshot) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut at = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut text: [StringBuilder; 4] = Default::default();
    let mut counts: [UInt64Builder; 5] = Default::default();
    let mut ratios: [Float64Builder; 2] = Default::default();
    let (mut client, mut server) = (QuantileColumns::default(), QuantileColumns::default());
    for edge in &snapshot.edges {
        let window = &edge.windows.last_1m;
        at.append_value(snapshot.at_unix_nanos as i64);
        text[0].append_value(&edge.source);
        text[1].append_value(&edge.target);
        text[2].append_value(label(&edge.connection_type));
        text[3].append_value(label(&edge.health));
        for (column, value) in counts.iter_mut().zip([
            window.requests,
            window.errors,
            edge.total_requests,
            edge.total_failed,
            edge.total_mtls,
        ]) {
            column.append_value(value);
        }
        ratios[0].append_value(window.rate_per_second);
        ratios[1].append_value(window.error_ratio);
        client.push(window.client_latency_ms.as_ref());
        server.push(window.server_latency_ms.as_ref());
    }
    let [source, target, connection, health] = text.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [requests, errors, total, failed, mtls] =
        counts.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [rate, error_ratio] = ratios.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(at.finish()),
        source,
        target,
        connection,
        health,
        requests,
        errors,
        rate,
        error_ratio,
    ];
    columns.extend(client.finish());
    columns.extend(server.finish());
    columns.extend([total, failed, mtls]);
    RecordBatch::try_new(EDGES.clone(), columns)
}

/// The snapshot's nodes as rows of `nodes`.
pub fn node_rows(snapshot: &GraphSnapshot) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut at = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut text: [StringBuilder; 7] = Default::default();
    let mut instances = UInt32Builder::new();
    let mut counts: [UInt64Builder; 4] = Default::default();
    let mut ratios: [Float64Builder; 2] = Default::default();
    let mut latency = QuantileColumns::default();
    for node in &snapshot.nodes {
        let window = &node.windows.last_1m;
        at.append_value(snapshot.at_unix_nanos as i64);
        text[0].append_value(&node.id);
        text[1].append_value(&node.name);
        text[2].append_option(node.namespace.as_deref());
        text[3].append_value(label(&node.kind));
        text[4].append_value(label(&node.health));
        text[5].append_value(node.versions.join(","));
        text[6].append_value(node.regions.join(","));
        instances.append_value(node.instances);
        for (column, value) in counts.iter_mut().zip([
            window.requests,
            window.errors,
            node.total_requests,
            node.total_errors,
        ]) {
            column.append_value(value);
        }
        ratios[0].append_value(window.rate_per_second);
        ratios[1].append_value(window.error_ratio);
        latency.push(window.latency_ms.as_ref());
    }
    let [id, name, namespace, kind, health, versions, regions] =
        text.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [requests, errors, total, total_errors] =
        counts.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let [rate, error_ratio] = ratios.map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(at.finish()),
        id,
        name,
        namespace,
        kind,
        health,
        Arc::new(instances.finish()),
        versions,
        regions,
        requests,
        errors,
        rate,
        error_ratio,
    ];
    columns.extend(latency.finish());
    columns.extend([total, total_errors]);
    RecordBatch::try_new(NODES.clone(), columns)
}
