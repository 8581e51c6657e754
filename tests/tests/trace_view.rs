//! Traces from a live meshtwin: the real OpenTelemetry SDK (Python) sends
//! a trace with known timings; `GET /api/v1/traces/{id}` returns it whole
//! with the critical path worked out by hand in `timed_trace.py`; the
//! search finds it by status, by graph edge and by peer; bad requests get
//! clear errors. Then headless Chromium opens the waterfall from the
//! address and from an edge of the live graph, and writes a screenshot to
//! target/screenshots/ui-trace.png.

use std::collections::BTreeMap;
use std::time::Duration;

use meshtwin_tests::client::{assert_api_errors, get, metric};
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use meshtwin_tests::tools;

const PLAIN_TRACES: usize = 4;

struct Sent {
    trace_id: String,
    start: i64,
    /// "service name kind" → span ID.
    spans: BTreeMap<String, String>,
}

fn send_timed_trace(meshtwin: &Meshtwin) -> Sent {
    let plain = PLAIN_TRACES.to_string();
    let output = tools::run_python("timed_trace.py", &[&meshtwin.otlp_grpc, &plain]);
    let sent: serde_json::Value = serde_json::from_slice(&output).unwrap();
    Sent {
        trace_id: sent["trace_id"].as_str().unwrap().to_owned(),
        start: sent["start_unix_nanos"].as_i64().unwrap(),
        spans: serde_json::from_value(sent["spans"].clone()).unwrap(),
    }
}

fn serve_with_quick_segments() -> Meshtwin {
    Meshtwin::serve_with_config("[store]\nsegment_max_seconds = 1\n")
}

/// The trace, once its segment is written.
async fn stored_trace(web: &str, trace_id: &str) -> serde_json::Value {
    eventually(
        Duration::from_secs(20),
        "the trace in the store",
        || async {
            let reply = get(&format!("{web}/api/v1/traces/{trace_id}")).await;
            (reply.status == 200).then(|| reply.json())
        },
    )
    .await
}

async fn search(web: &str, query: &str) -> Vec<String> {
    let reply = get(&format!("{web}/api/v1/traces?{query}")).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    let answer = reply.json();
    answer["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_comes_back_whole_with_its_critical_path_and_is_found_by_search() {
    let meshtwin = serve_with_quick_segments();
    let sent = send_timed_trace(&meshtwin);
    let trace = stored_trace(&meshtwin.web, &sent.trace_id).await;

    assert_eq!(trace["trace_id"], sent.trace_id);
    assert_eq!(trace["span_count"], 8);
    assert_eq!(trace["error_count"], 1);
    assert_eq!(trace["duration_ns"], 100_000_000);
    assert_eq!(
        trace["services"],
        serde_json::json!(["gateway", "inventory", "orders"])
    );
    let name_of: BTreeMap<&str, &str> = sent
        .spans
        .iter()
        .map(|(name, id)| (id.as_str(), name.as_str()))
        .collect();
    let ms = |v: &serde_json::Value| (v.as_i64().unwrap() - sent.start) / 1_000_000;
    let path: Vec<(&str, i64, i64)> = trace["critical_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                name_of[s["span_id"].as_str().unwrap()],
                ms(&s["start_unix_nanos"]),
                ms(&s["end_unix_nanos"]),
            )
        })
        .collect();
    assert_eq!(
        path,
        [
            ("gateway GET /order server", 0, 2),
            ("gateway GET /orders client", 2, 4),
            ("orders GET /orders server", 4, 15),
            ("orders SELECT orders client", 15, 90),
            ("orders GET /orders server", 90, 91),
            ("orders render internal", 91, 95),
            ("orders GET /orders server", 95, 96),
            ("gateway GET /orders client", 96, 98),
            ("gateway GET /order server", 98, 100),
        ]
    );
    let spans = trace["spans"].as_array().unwrap();
    let off_path: Vec<&str> = spans
        .iter()
        .filter(|s| s["critical_ns"] == 0)
        .map(|s| name_of[s["span_id"].as_str().unwrap()])
        .collect();
    assert_eq!(
        off_path,
        [
            "orders GET /stock client",
            "inventory GET /stock server",
            "gateway audit internal"
        ]
    );
    let failed = spans.iter().find(|s| s["error"] == true).unwrap();
    assert_eq!(failed["service"], "inventory");
    assert_eq!(failed["status_message"], "out of stock");
    let select = spans.iter().find(|s| s["name"] == "SELECT orders").unwrap();
    assert_eq!(select["attributes"]["db.system"], "postgresql");
    assert_eq!(select["peer"], "orders-db");

    // Searches, over the 15 minutes up to the twin's clock by default.
    let web = &meshtwin.web;
    let only_it = std::slice::from_ref(&sent.trace_id);
    assert_eq!(search(web, "status=error").await, only_it);
    let on_edge = search(web, "caller=gateway&service=orders").await;
    assert_eq!(on_edge.len(), 1 + PLAIN_TRACES, "{on_edge:?}");
    assert!(on_edge.contains(&sent.trace_id));
    assert_eq!(search(web, "service=orders&peer=orders-db").await, only_it);
    assert_eq!(
        search(web, "service=orders&min_duration_ms=50&order=slowest").await,
        only_it
    );
    assert_eq!(search(web, "caller=orders&service=gateway").await.len(), 0);
    let from = sent.start / 1_000_000_000 - 3600;
    let before = format!("from={from}&to={}", from + 60);
    assert!(search(web, &before).await.is_empty());
    let narrowed = get(&format!(
        "{web}/api/v1/traces/{}?from=1970-01-01T00:00:00Z&to=1970-01-01T00:01:00Z",
        sent.trace_id
    ))
    .await;
    assert_eq!(narrowed.status, 404);

    // Bad requests say what is wrong, and are counted.
    let counted = |page: &str, outcome: &str| {
        let series = format!("meshtwin_query_queries_total{{outcome=\"{outcome}\"}}");
        metric(page, &series).unwrap_or(0.0)
    };
    let before = get(&format!("{web}/metrics")).await.text();
    let cases = [
        ("traces/xyz", 400, "32 hex digits"),
        (
            "traces/0123456789abcdef0123456789abcdef",
            404,
            "no span of trace",
        ),
        ("traces?from=yesterday", 400, "neither an RFC 3339 time"),
        ("traces?from=20&to=10", 400, "from must be before to"),
        ("traces?limit=0", 400, "limit must be between 1 and 500"),
        ("traces?servce=orders", 400, "servce"),
        ("traces?status=broken", 400, "status"),
        ("traces?min_duration_ms=-1", 400, "min_duration_ms"),
    ];
    assert_api_errors(web, &cases).await;
    let after = get(&format!("{web}/metrics")).await.text();
    for (outcome, more) in [("not_found", 1.0), ("invalid", 7.0)] {
        assert_eq!(
            counted(&after, outcome) - counted(&before, outcome),
            more,
            "{outcome}"
        );
    }

    // Without the store, traces cannot be read, and the answer says why.
    let off = Meshtwin::serve_with_config("[store]\nenabled = false\n");
    let reply = get(&format!("{}/api/v1/traces/{}", off.web, sent.trace_id)).await;
    assert_eq!(reply.status, 503);
    assert!(
        reply.json()["error"]
            .as_str()
            .unwrap()
            .contains("[store] enabled")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_opens_the_waterfall_from_the_address_and_from_an_edge() {
    let screenshot = tools::screenshot("ui-trace.png");
    let meshtwin = serve_with_quick_segments();
    let sent = send_timed_trace(&meshtwin);
    stored_trace(&meshtwin.web, &sent.trace_id).await;

    let url = format!("{}/", meshtwin.web);
    let summary = tools::run_browser(
        "ui_trace.mjs",
        &[url.as_ref(), screenshot.as_ref(), sent.trace_id.as_ref()],
    )
    .await;
    assert_eq!(summary["errors"], serde_json::json!([]), "no page errors");
    // From the address: a row per span, in call-tree order, five on the path.
    assert_eq!(
        summary["rows"],
        serde_json::json!([
            "gateway GET /order",
            "gateway GET /orders",
            "orders GET /orders",
            "orders GET /stock",
            "inventory GET /stock",
            "orders SELECT orders",
            "orders render",
            "gateway audit",
        ]),
        "{summary}"
    );
    assert_eq!(
        summary["critical"],
        serde_json::json!([
            "gateway GET /order",
            "gateway GET /orders",
            "orders GET /orders",
            "orders SELECT orders",
            "orders render",
        ])
    );
    assert_eq!(summary["segments"], 9);
    assert_eq!(
        summary["error_rows"],
        serde_json::json!(["inventory GET /stock"])
    );
    assert_eq!(
        summary["details"], "out of stock",
        "span details open on click"
    );
    // From the gateway → orders edge: its calls listed, the trace reopened.
    assert_eq!(summary["edge_results"], 1 + PLAIN_TRACES as u64);
    assert_eq!(summary["reopened"], sent.trace_id);
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}
