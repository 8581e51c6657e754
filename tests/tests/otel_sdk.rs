//! A real OpenTelemetry SDK (Python, OTLP/gRPC and OTLP/HTTP exporters)
//! sends traces across three services; the graph shows exactly those
//! nodes and edges, with the right counts, and /metrics agrees.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use meshtwin_model::graph::GraphSnapshot;
use meshtwin_tests::client::{get, metric};
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use meshtwin_tests::tools;

const TRACES: u64 = 12;

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_traces_across_three_services_build_the_exact_graph() {
    let meshtwin = Meshtwin::serve(&[]);
    let script = tools::workspace().join("tests/python/three_services.py");
    let output = Command::new(tools::python())
        .arg(&script)
        .args([
            &meshtwin.otlp_grpc,
            &meshtwin.otlp_http,
            &TRACES.to_string(),
        ])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "python SDK client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let graph_url = format!("{}/api/v1/graph", meshtwin.web);
    let graph: GraphSnapshot = eventually(
        Duration::from_secs(20),
        "both edges with all traces",
        || async {
            let graph: GraphSnapshot = serde_json::from_value(get(&graph_url).await.json()).ok()?;
            let counts: Vec<u64> = graph.edges.iter().map(|e| e.total_requests).collect();
            (counts == [TRACES, TRACES]).then_some(graph)
        },
    )
    .await;

    let nodes: BTreeMap<&str, (u64, u64)> = graph
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), (n.total_requests, n.total_errors)))
        .collect();
    let expected_nodes = BTreeMap::from([
        ("checkout", (TRACES, 0)),
        ("ledger", (TRACES, 1)),
        ("payments", (TRACES, 0)),
    ]);
    assert_eq!(nodes, expected_nodes);

    let edges: BTreeMap<&str, (u64, u64)> = graph
        .edges
        .iter()
        .map(|e| (e.id.as_str(), (e.total_requests, e.total_failed)))
        .collect();
    let expected_edges = BTreeMap::from([
        ("checkout->payments", (TRACES, 0)),
        ("payments->ledger", (TRACES, 1)),
    ]);
    assert_eq!(edges, expected_edges);
    for edge in &graph.edges {
        let window = &edge.windows.last_5m;
        assert_eq!(
            window.requests, TRACES,
            "{}: spans are from now, so in the window",
            edge.id
        );
        assert!(window.client_latency_ms.is_some() && window.server_latency_ms.is_some());
    }

    let page = get(&format!("{}/metrics", meshtwin.web)).await.text();
    let series = |name: &str, client: &str, server: &str| {
        format!(
            "{name}{{client=\"{client}\",server=\"{server}\",connection_type=\"\",client_service_namespace=\"\",server_service_namespace=\"\"}}"
        )
    };
    let requests = series("traces_service_graph_request_total", "payments", "ledger");
    assert_eq!(metric(&page, &requests), Some(TRACES as f64), "{page}");
    let failed = series(
        "traces_service_graph_request_failed_total",
        "payments",
        "ledger",
    );
    assert_eq!(metric(&page, &failed), Some(1.0));
    let histogram_count = series(
        "traces_service_graph_request_server_seconds_count",
        "checkout",
        "payments",
    );
    assert_eq!(metric(&page, &histogram_count), Some(TRACES as f64));
    // Each of the three services sent TRACES * (1 or 2) spans: 5 per trace.
    let received: f64 = ["grpc", "http"]
        .iter()
        .filter_map(|t| {
            metric(
                &page,
                &format!("meshtwin_collector_spans_received_total{{transport=\"{t}\"}}"),
            )
        })
        .sum();
    assert_eq!(received, (TRACES * 5) as f64);
    assert_eq!(
        metric(&page, "meshtwin_twin_pairs_matched_total"),
        Some((TRACES * 2) as f64)
    );
}
