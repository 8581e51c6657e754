//! Time travel on a live meshtwin: the real OpenTelemetry SDK (Python)
//! sends a "before" mesh, then ten minutes of event time later an "after"
//! one (legacy dropped, payments added, orders failing and slower).
//! `GET /api/v1/graph?at=T` returns the graph as it was, and
//! `GET /api/v1/graph/diff` names what appeared, vanished and degraded.
//! Headless Chromium drags the time slider back, opens the diff view and
//! finds each element coloured by what happened to it, and writes a
//! screenshot to target/screenshots/ui-diff.png.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtwin_tests::client::{assert_api_errors, get};
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use meshtwin_tests::tools;

const CALLS: u64 = 40;
const SECOND: i64 = 1_000_000_000;

fn send_phase(meshtwin: &Meshtwin, start: i64, phase: &str) {
    tools::run_python(
        "phase_traffic.py",
        &[
            &meshtwin.otlp_grpc,
            &start.to_string(),
            phase,
            &CALLS.to_string(),
        ],
    );
}

/// Unix nanoseconds as the API's exact decimal seconds.
fn seconds(unix_nanos: i64) -> String {
    format!("{}.{:09}", unix_nanos / SECOND, unix_nanos % SECOND)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// The requests of edge `source → target` in a past graph's last minute.
fn edge_calls(graph: &serde_json::Value, source: &str, target: &str) -> Option<u64> {
    graph["edges"]
        .as_array()?
        .iter()
        .find(|e| e["source"] == source && e["target"] == target)
        .and_then(|e| e["requests_1m"].as_u64())
}

/// The past graph at `at`, once it holds `source → target` with every call.
async fn kept(web: &str, at: i64, source: &str, target: &str) -> serde_json::Value {
    let what = format!("a kept snapshot with {source} -> {target}");
    eventually(Duration::from_secs(30), &what, || async {
        let reply = get(&format!("{web}/api/v1/graph?at={}", seconds(at))).await;
        let graph = (reply.status == 200).then(|| reply.json())?;
        (edge_calls(&graph, source, target) == Some(CALLS)).then_some(graph)
    })
    .await
}

/// A mesh with a before and an after: the times to ask about each.
struct History {
    meshtwin: Meshtwin,
    before: i64,
    after: i64,
}

async fn changed_mesh() -> History {
    let meshtwin = Meshtwin::serve_with_config(
        "[store]\nsegment_max_seconds = 1\nhistory_interval_seconds = 1\ntables_flush_seconds = 1\n",
    );
    let start = now() - 600 * SECOND;
    send_phase(&meshtwin, start, "before");
    let before = start + 30 * SECOND;
    kept(&meshtwin.web, before, "orders", "legacy").await;
    send_phase(&meshtwin, now() - 40 * SECOND, "after");
    let graph = kept(&meshtwin.web, now() + 60 * SECOND, "orders", "payments").await;
    let graph = kept(
        &meshtwin.web,
        graph["at_unix_nanos"].as_i64().unwrap(),
        "gateway",
        "orders",
    )
    .await;
    History {
        after: graph["at_unix_nanos"].as_i64().unwrap(),
        meshtwin,
        before,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_graph_as_it_was_and_what_changed_since() {
    let h = changed_mesh().await;
    let web = &h.meshtwin.web;

    // The past, by RFC 3339 time: legacy was there, payments was not.
    let rfc3339 = |t: i64| {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(t as i128).unwrap();
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let reply = get(&format!("{web}/api/v1/graph?at={}", rfc3339(h.before))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let past = reply.json();
    assert_eq!(past["requested_unix_nanos"], h.before);
    assert!(past["at_unix_nanos"].as_i64().unwrap() <= h.before);
    let mut names: Vec<&str> = past["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["gateway", "legacy", "orders"]);
    let gateway_orders = past["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "gateway" && e["target"] == "orders")
        .unwrap();
    assert_eq!(gateway_orders["requests_1m"], CALLS);
    assert_eq!(gateway_orders["error_ratio"], 0.0);

    // What changed: legacy vanished, payments appeared, orders degraded.
    let reply = get(&format!(
        "{web}/api/v1/graph/diff?from={}&to={}",
        seconds(h.before),
        seconds(h.after)
    ))
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let diff = reply.json();
    assert_eq!(diff["nodes_added"], serde_json::json!(["payments"]));
    assert_eq!(diff["nodes_removed"], serde_json::json!(["legacy"]));
    assert_eq!(diff["edges_added"][0]["id"], "orders->payments");
    assert_eq!(diff["edges_removed"][0]["id"], "orders->legacy");
    assert_eq!(diff["edges_added"].as_array().unwrap().len(), 1);
    assert_eq!(diff["edges_removed"].as_array().unwrap().len(), 1);
    let top = &diff["changes"][0];
    assert_eq!(
        (&top["id"], &top["metric"], &top["verdict"]),
        (
            &serde_json::json!("gateway->orders"),
            &serde_json::json!("error_ratio"),
            &serde_json::json!("degraded")
        ),
        "{diff}"
    );
    assert_eq!(
        (top["before"].as_f64(), top["after"].as_f64()),
        (Some(0.0), Some(0.5))
    );
    let slower = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "gateway->orders" && c["metric"] == "p99_ms")
        .expect("the edge's p99 moved");
    assert!(slower["after"].as_f64() > slower["before"].as_f64());
    assert_eq!(diff["verdicts"]["gateway->orders"], "degraded");

    // `to` defaults to the twin's clock.
    let reply = get(&format!(
        "{web}/api/v1/graph/diff?from={}",
        seconds(h.before)
    ))
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["nodes_removed"], serde_json::json!(["legacy"]));

    // The history's range, and clear errors.
    let range = get(&format!("{web}/api/v1/graph/history")).await.json();
    assert!(range["first_unix_nanos"].as_i64().unwrap() <= h.before);
    assert!(range["last_unix_nanos"].as_i64().unwrap() >= h.after);
    assert!(range["snapshots"].as_i64().unwrap() >= 2);
    let cases = [
        (
            "graph?at=1000",
            404,
            "no snapshot of the graph was kept at or before 1970-01-01T00:16:40Z",
        ),
        ("graph?at=soon", 400, "neither an RFC 3339 time"),
        ("graph?when=1", 400, "when"),
        ("graph/diff?to=5", 400, "from"),
        ("graph/diff?from=20&to=10", 400, "from must be before to"),
        ("graph/diff?from=1000&to=2000", 404, "no snapshot"),
        ("graph/diff?from=1000&limit=0", 400, "limit"),
    ];
    assert_api_errors(web, &cases).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_replays_the_past_and_colours_the_diff() {
    let screenshot = tools::screenshot("ui-diff.png");
    let h = changed_mesh().await;
    let url = format!("{}/", h.meshtwin.web);
    let before = h.before.to_string();
    let summary = tools::run_browser(
        "ui_history.mjs",
        &[url.as_ref(), screenshot.as_ref(), before.as_ref()],
    )
    .await;
    assert_eq!(summary["errors"], serde_json::json!([]), "no page errors");
    // Live: payments is there (legacy too, while the twin keeps it idle).
    let live: Vec<String> = serde_json::from_value(summary["live_nodes"].clone()).unwrap();
    assert!(live.iter().any(|n| n == "payments"), "{summary}");
    assert_eq!(
        summary["past_nodes"],
        serde_json::json!(["gateway", "legacy", "orders"])
    );
    assert_eq!(
        summary["diff"],
        serde_json::json!({
            "gateway": "degraded",
            "orders": "degraded",
            "gateway->orders": "degraded",
            "orders->legacy": "vanished",
            "orders->payments": "appeared",
            "legacy": "vanished",
            "payments": "appeared",
        }),
        "{summary}"
    );
    let changes = summary["changes"].to_string();
    assert!(
        changes.contains("gateway->orders: errors 0% → 50%"),
        "{changes}"
    );
    assert_eq!(summary["back_to_live"], summary["live_nodes"]);
    assert_eq!(summary["marks_left"], 0, "live again: no diff colours");
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
}
