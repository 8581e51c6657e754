//! The simulated case the query tests read, written through the real
//! span store and metrics table.

use std::path::{Path, PathBuf};

use meshtwin_datasets::dataset::{CaseSpec, DatasetReader, Payload, WriteOptions, generate};
use meshtwin_store::table::{TableAppender, TableConfig};
use meshtwin_store::{SpanStore, StoreConfig};

pub(crate) fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Simulates the case and writes it through the span store and the
/// metrics table, as a live meshtwin would.
pub(crate) fn stored_case(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(golden_dir().join("case.toml")).unwrap();
    let case: CaseSpec = toml::from_str(&text).unwrap();
    let dataset = dir.join("case");
    generate(&case, &dataset, WriteOptions::default(), &mut |_| {}).unwrap();
    let store_dir = dir.join("store");
    // The case is dated in the past: keep it whatever its age.
    let forever = 100 * 365 * 24 * 3600;
    let (spans, _) = SpanStore::open(StoreConfig {
        retention_max_age_seconds: forever,
        ..StoreConfig::new(store_dir.clone())
    })
    .unwrap();
    let metrics = TableAppender::start(TableConfig {
        root: store_dir.join("metrics"),
        schema: meshtwin_store::metric_rows::SCHEMA.clone(),
        flush_every: std::time::Duration::from_secs(3600),
        retention_max_age_seconds: forever,
        retention_max_bytes: u64::MAX,
        queue_batches: 1 << 20,
    })
    .unwrap();
    for batch in DatasetReader::open(&dataset).unwrap() {
        match batch.unwrap().payload {
            Payload::Traces(request) => spans.append(&request).unwrap(),
            Payload::Metrics(request) => {
                let rows = meshtwin_store::metric_rows::metric_rows(&request).unwrap();
                assert!(metrics.append(rows));
            }
        }
    }
    spans.flush().unwrap();
    metrics.flush().unwrap();
    store_dir
}
