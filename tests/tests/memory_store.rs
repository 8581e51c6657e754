//! A memory-only span store (`[store] memory_only_max_spans`): the real
//! OpenTelemetry SDK (Python) sends traces; SQL and the trace view answer
//! from memory; nothing of the spans is written to disk.

use std::time::Duration;

use meshtwin_tests::client::{get, metric, post};
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use meshtwin_tests::tools;

const PLAIN_TRACES: usize = 4;

async fn sql(web: &str, sql: &str) -> serde_json::Value {
    let body = serde_json::json!({ "sql": sql }).to_string().into_bytes();
    let reply = post(
        &format!("{web}/api/v1/query"),
        "application/json",
        &[],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{sql}: {}", reply.text());
    reply.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_kept_in_memory_answer_sql_and_traces_and_leave_no_files() {
    let meshtwin = Meshtwin::serve_with_config(
        "[store]\nmemory_only_max_spans = 10000\nsegment_max_seconds = 1\n",
    );
    let output = tools::run_python(
        "timed_trace.py",
        &[&meshtwin.otlp_grpc, &PLAIN_TRACES.to_string()],
    );
    let sent: serde_json::Value = serde_json::from_slice(&output).unwrap();
    let trace_id = sent["trace_id"].as_str().unwrap().to_owned();
    let web = meshtwin.web.clone();

    // The timed trace has 8 spans, and each plain trace 3.
    let total = 8 + 3 * PLAIN_TRACES;
    let count = "SELECT count(*) AS spans FROM spans".to_owned();
    let answer = eventually(Duration::from_secs(20), "every span in SQL", || {
        let (web, count) = (web.clone(), count.clone());
        async move {
            let answer = sql(&web, &count).await;
            (answer["rows"][0]["spans"] == total).then_some(answer)
        }
    })
    .await;
    assert_eq!(answer["row_count"], 1);

    let reply = get(&format!("{web}/api/v1/traces/{trace_id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let trace = reply.json();
    assert_eq!(trace["span_count"], 8);
    assert_eq!(trace["error_count"], 1);
    assert!(!trace["critical_path"].as_array().unwrap().is_empty());

    let page = get(&format!("{web}/metrics")).await.text();
    assert_eq!(
        metric(&page, "meshtwin_store_spans_in_memory_total"),
        Some(total as f64)
    );
    assert_eq!(
        metric(&page, "meshtwin_store_spans_in_segments_total"),
        Some(0.0)
    );
    let store = meshtwin.data_dir().join("store");
    assert_eq!(tools::bytes_under(&store.join("spans"), None), 0);
    assert!(!store.join("wal").exists(), "no log");
}
