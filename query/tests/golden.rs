//! Golden SQL tests: every `tests/golden/*.sql` runs against a simulated
//! case (`tests/golden/case.toml`) written through the real span store,
//! and its rendered answer (or error) must equal the `.out` file beside
//! it. To regenerate every `.out` after a deliberate change:
//!
//! ```sh
//! MESHTWIN_BLESS=1 cargo test -p meshtwin-query --test golden
//! ```

use std::path::{Path, PathBuf};

use meshtwin_datasets::dataset::{CaseSpec, DatasetReader, Payload, WriteOptions, generate};
use meshtwin_query::output::{Format, render};
use meshtwin_query::{QueryConfig, QueryEngine, QueryRequest};
use meshtwin_store::table::{TableAppender, TableConfig};
use meshtwin_store::{SpanStore, StoreConfig};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Simulates the case and writes it through the span store and the
/// metrics table, as a live meshtwin would.
fn stored_case(dir: &Path) -> PathBuf {
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
            Payload::Traces(request) => spans.append(request).unwrap(),
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

#[test]
fn golden_sql_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = stored_case(dir.path());
    let engine = QueryEngine::start(QueryConfig {
        // One partition: approximate percentiles see rows in one order.
        threads: 1,
        ..QueryConfig::new(store_dir)
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bless = std::env::var_os("MESHTWIN_BLESS").is_some();
    let mut queries: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    queries.sort();
    assert!(queries.len() >= 5, "the golden queries are missing");
    let mut mismatches = Vec::new();
    for path in &queries {
        let sql = std::fs::read_to_string(path).unwrap();
        let request = QueryRequest {
            sql,
            ..QueryRequest::default()
        };
        let actual = match runtime.block_on(engine.run(request)) {
            Ok(mut result) => {
                result.elapsed = std::time::Duration::ZERO;
                render(&result, Format::Table).unwrap()
            }
            Err(error) => format!("error: {error}\nposition: {:?}\n", error.position()),
        };
        let golden = path.with_extension("out");
        if bless {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if actual != expected {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden answers differ (MESHTWIN_BLESS=1 regenerates them):\n{}",
        mismatches.join("\n")
    );
}
