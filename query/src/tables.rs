//! The tables a query sees, each a listing of its Parquet files under the
//! store's directory with a fixed schema (files are listed anew for every
//! query, so a segment written a moment ago is in the next one):
//!
//! | table | one row per | written |
//! | --- | --- | --- |
//! | `spans` | span | every segment flush (10 s by default) |
//! | `edges` | graph edge per twin snapshot | every history interval |
//! | `nodes` | graph node per twin snapshot | every history interval |
//! | `metrics` | OTLP metric data point | every flush interval |
//!
//! A memory-only span store's `spans` are its batches in memory instead.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

/// Every table: its name (also its directory) and schema.
pub fn all() -> [(&'static str, SchemaRef); 4] {
    [
        ("spans", meshtwin_store::rows::SCHEMA.clone()),
        ("edges", meshtwin_store::history::EDGES.clone()),
        ("nodes", meshtwin_store::history::NODES.clone()),
        ("metrics", meshtwin_store::metric_rows::SCHEMA.clone()),
    ]
}

/// Creates every table's directory, so an empty store answers with no
/// rows rather than an error.
pub(crate) fn create_dirs(store_dir: &Path) -> std::io::Result<()> {
    for (name, _) in all() {
        std::fs::create_dir_all(store_dir.join(name))?;
    }
    Ok(())
}

pub(crate) fn register(context: &SessionContext, store_dir: &Path) {
    for (name, schema) in all() {
        let dir = store_dir.join(name);
        let table = ListingTableUrl::parse(format!("{}/", dir.display()))
            .and_then(|url| {
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new(url)
                    .with_listing_options(options)
                    .with_schema(schema);
                ListingTable::try_new(config)
            })
            .and_then(|table| context.register_table(name, Arc::new(table)));
        if let Err(error) = table {
            tracing::warn!(table = name, %error, "cannot register a table");
        }
    }
}

/// Replaces `spans` by `batches`, dealt into `partitions` partitions so
/// that a query over them runs on every query thread.
pub(crate) fn register_spans_in_memory(
    context: &SessionContext,
    batches: Vec<RecordBatch>,
    partitions: usize,
) {
    let mut dealt = vec![Vec::new(); partitions.max(1)];
    let count = dealt.len();
    for (i, batch) in batches.into_iter().enumerate() {
        dealt[i % count].push(batch);
    }
    let table = MemTable::try_new(meshtwin_store::rows::SCHEMA.clone(), dealt).and_then(|table| {
        context.deregister_table("spans")?;
        context.register_table("spans", Arc::new(table))
    });
    if let Err(error) = table {
        tracing::warn!(%error, "cannot register the spans kept in memory");
    }
}
