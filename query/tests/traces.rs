//! Traces read back from the simulated bank case in the real span store:
//! a whole trace with its critical path, and searches, each checked
//! against plain SQL over the same store.

mod common;

use std::time::Duration;

use meshtwin_query::traces::{SearchOrder, StatusFilter, TimeRange, TraceId, TraceSearch};
use meshtwin_query::{QueryConfig, QueryEngine, QueryError, QueryRequest};

struct Fixture {
    _dir: tempfile::TempDir,
    engine: QueryEngine,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = common::stored_case(dir.path());
        let engine = QueryEngine::start(QueryConfig::new(store_dir)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            _dir: dir,
            engine,
            runtime,
        }
    }

    fn sql(&self, sql: &str) -> Vec<serde_json::Value> {
        let request = QueryRequest {
            sql: sql.to_owned(),
            ..QueryRequest::default()
        };
        let result = self.runtime.block_on(self.engine.run(request)).unwrap();
        meshtwin_query::output::json_rows(&result).unwrap()
    }

    /// The whole case's time range.
    fn range(&self) -> TimeRange {
        let row = &self.sql(
            "SELECT CAST(min(start_time) AS BIGINT) AS a, CAST(max(start_time) AS BIGINT) AS b FROM spans",
        )[0];
        TimeRange {
            from: row["a"].as_i64().unwrap(),
            to: row["b"].as_i64().unwrap() + 1,
        }
    }

    fn search(&self, search: TraceSearch) -> Vec<meshtwin_query::traces::TraceSummary> {
        self.runtime
            .block_on(self.engine.search_traces(&search))
            .unwrap()
    }
}

fn everything(range: TimeRange) -> TraceSearch {
    TraceSearch {
        service: None,
        operation: None,
        caller: None,
        peer: None,
        min_duration: None,
        max_duration: None,
        status: None,
        range,
        order: SearchOrder::Recent,
        limit: 20,
    }
}

#[test]
fn traces_come_back_whole_with_a_critical_path_and_searches_match_sql() {
    let f = Fixture::new();
    let range = f.range();

    // The trace with the most spans, by SQL.
    let row = &f.sql(
        "SELECT trace_id, count(*) AS n, sum(CASE WHEN error THEN 1 ELSE 0 END) AS e \
         FROM spans GROUP BY trace_id ORDER BY n DESC, trace_id LIMIT 1",
    )[0];
    let id: TraceId = row["trace_id"].as_str().unwrap().parse().unwrap();
    let trace = f
        .runtime
        .block_on(f.engine.trace(&id, None))
        .unwrap()
        .expect("the trace is stored");
    assert_eq!(trace.span_count as i64, row["n"].as_i64().unwrap());
    assert_eq!(trace.error_count as i64, row["e"].as_i64().unwrap());
    assert!(trace.spans.len() > 3, "a trace across services");
    assert!(
        trace
            .spans
            .windows(2)
            .all(|w| w[0].start_unix_nanos <= w[1].start_unix_nanos)
    );
    // The path runs without gaps over the root span, and every span on
    // it carries its share.
    let root = trace
        .spans
        .iter()
        .find(|s| s.parent_span_id.is_none())
        .expect("a root span");
    let mut at = root.start_unix_nanos;
    for segment in &trace.critical_path {
        assert_eq!(segment.start_unix_nanos, at);
        at = segment.end_unix_nanos;
    }
    assert_eq!(at, root.end_unix_nanos);
    let on_path: i64 = trace.spans.iter().map(|s| s.critical_ns).sum();
    assert_eq!(on_path, root.end_unix_nanos - root.start_unix_nanos);
    assert!(trace.spans.iter().filter(|s| s.critical_ns > 0).count() >= 2);

    // Narrowed to a range that holds it: the same; to one that does not: none.
    let narrowed = TimeRange {
        from: trace.start_unix_nanos,
        to: trace.end_unix_nanos + 1,
    };
    let again = f.runtime.block_on(f.engine.trace(&id, Some(narrowed)));
    assert_eq!(again.unwrap().unwrap().spans, trace.spans);
    let before = TimeRange {
        from: range.from - 10_000_000_000,
        to: range.from,
    };
    assert_eq!(
        f.runtime.block_on(f.engine.trace(&id, Some(before))),
        Ok(None)
    );
    let unknown: TraceId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    assert_eq!(f.runtime.block_on(f.engine.trace(&unknown, None)), Ok(None));

    // Payments errors: exactly the traces SQL finds, slowest first.
    let expected = f.sql(
        "SELECT trace_id, max(duration_ns) AS d FROM spans WHERE service = 'payments' AND error \
         GROUP BY trace_id ORDER BY d DESC, trace_id LIMIT 7",
    );
    let found = f.search(TraceSearch {
        service: Some("payments".into()),
        status: Some(StatusFilter::Error),
        order: SearchOrder::Slowest,
        limit: 7,
        ..everything(range)
    });
    assert_eq!(found.len(), 7);
    for (summary, row) in found.iter().zip(&expected) {
        assert_eq!(summary.trace_id, row["trace_id"].as_str().unwrap());
        assert_eq!(summary.matched_duration_ns, row["d"].as_i64().unwrap());
        assert!(summary.error_count >= 1);
        assert!(summary.span_count >= 2);
    }

    // Calls on one edge: a payments span whose parent is api-gateway's.
    let edge = f.sql(
        "SELECT count(DISTINCT m.trace_id) AS n FROM spans m JOIN spans p \
         ON p.trace_id = m.trace_id AND p.span_id = m.parent_span_id \
         WHERE m.service = 'payments' AND p.service = 'api-gateway'",
    );
    let expected = edge[0]["n"].as_i64().unwrap();
    assert!(expected > 0, "the bank's gateway calls payments");
    let found = f.search(TraceSearch {
        service: Some("payments".into()),
        caller: Some("api-gateway".into()),
        limit: 500,
        ..everything(range)
    });
    assert_eq!(found.len() as i64, expected.min(500));
    assert!(
        found
            .windows(2)
            .all(|w| w[0].start_unix_nanos >= w[1].start_unix_nanos - 60_000_000_000),
        "recent first"
    );

    // Duration bounds hold on the matched span.
    let found = f.search(TraceSearch {
        min_duration: Some(Duration::from_millis(50)),
        max_duration: Some(Duration::from_millis(80)),
        ..everything(range)
    });
    assert!(!found.is_empty());
    for summary in &found {
        let ns = summary.matched_duration_ns;
        assert!((50_000_000..=80_000_000).contains(&ns), "{ns}");
    }
    assert!(
        f.search(TraceSearch {
            service: Some("no-such-service".into()),
            ..everything(range)
        })
        .is_empty()
    );
}

#[test]
fn what_a_caller_types_is_checked_and_never_becomes_sql() {
    for bad in [
        "",
        "xyz",
        "00000000000000000000000000000000",
        "0123' OR 1=1 --",
    ] {
        assert!(
            matches!(bad.parse::<TraceId>(), Err(QueryError::Invalid { .. })),
            "{bad:?}"
        );
    }
    let id: TraceId = " 0123456789ABCDEF0123456789ABCDEF ".parse().unwrap();
    assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");

    let dir = tempfile::tempdir().unwrap();
    let engine = QueryEngine::start(QueryConfig::new(dir.path().to_owned())).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // A quote in a value is a value: no match, no error.
    let range = TimeRange { from: 0, to: 1 };
    let found = runtime.block_on(engine.search_traces(&TraceSearch {
        service: Some("x' OR '1'='1".into()),
        ..everything(range)
    }));
    assert_eq!(found, Ok(Vec::new()));
    let empty = runtime.block_on(engine.search_traces(&everything(TimeRange { from: 5, to: 5 })));
    assert!(matches!(empty, Err(QueryError::Invalid { .. })));
}
