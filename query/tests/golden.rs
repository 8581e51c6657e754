//! Golden SQL tests: every `tests/golden/*.sql` runs against a simulated
//! case (`tests/golden/case.toml`) written through the real span store,
//! and its rendered answer (or error) must equal the `.out` file beside
//! it. To regenerate every `.out` after a deliberate change:
//!
//! ```sh
//! MESHTWIN_BLESS=1 cargo test -p meshtwin-query --test golden
//! ```

use std::path::PathBuf;

mod common;

use common::{golden_dir, stored_case};
use meshtwin_query::output::{Format, render};
use meshtwin_query::{QueryConfig, QueryEngine, QueryRequest};

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
