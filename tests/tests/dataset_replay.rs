//! `meshtwin generate` writes a case with a fault as OTLP files, and
//! `meshtwin replay` sends every span and metric point of it to a real
//! `meshtwin serve`, over gRPC and over HTTP, at a pace or flat out; the
//! twin's graph shows the fault. A dead endpoint ends a replay quickly,
//! with the reason and a failing exit code.

use std::path::Path;
use std::time::{Duration, Instant};

use meshtwin_datasets::dataset::{Manifest, read_labels, read_manifest};
use meshtwin_model::graph::GraphSnapshot;
use meshtwin_tests::client::{get, metric};
use meshtwin_tests::sandbox::{Meshtwin, eventually, run_meshtwin};

const CASE: &str = r#"
topology = "online-boutique"
duration_s = 20.0

[options]
seed = 3

[[options.faults]]
type = "error_returns"
share = 0.6
service = "cart"
start_s = 5.0
duration_s = 10.0
"#;

fn generate(dir: &Path, extra: &[&str]) -> Manifest {
    let case = dir.join("case.toml");
    std::fs::write(&case, CASE).unwrap();
    let out = dir.join("dataset");
    let mut args = vec!["generate", "--case", case.to_str().unwrap()];
    args.extend_from_slice(&["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let (code, text) = run_meshtwin(&args);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("fault error_returns on cart"), "{text}");
    read_manifest(&out).unwrap()
}

async fn received(meshtwin: &Meshtwin, spans: u64, points: u64, transport: &str) {
    let url = format!("{}/metrics", meshtwin.web);
    eventually(Duration::from_secs(30), "every span and point counted", || {
        let url = url.clone();
        async move {
            let page = get(&url).await.text();
            let spans_in = metric(
                &page,
                &format!("meshtwin_collector_spans_received_total{{transport=\"{transport}\"}}"),
            );
            let points_in = metric(
                &page,
                &format!(
                    "meshtwin_collector_metric_points_received_total{{transport=\"{transport}\"}}"
                ),
            );
            (spans_in == Some(spans as f64) && points_in == Some(points as f64)).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_case_replays_whole_over_grpc_and_its_fault_shows_in_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(dir.path(), &["--gzip"]);
    let dataset = dir.path().join("dataset");
    let labels = read_labels(&dataset).unwrap();
    assert_eq!(labels[0].service, "cart");
    assert!(manifest.spans > 1_000, "{manifest:?}");

    let meshtwin = Meshtwin::serve(&[]);
    let (code, text) = run_meshtwin(&[
        "replay",
        dataset.to_str().unwrap(),
        "--endpoint",
        &meshtwin.otlp_grpc,
        "--speed",
        "max",
    ]);
    assert_eq!(code, 0, "{text}");
    let summary = format!(
        "sent {} spans in {} trace requests and {} metric points",
        manifest.spans, manifest.trace_requests, manifest.metric_points
    );
    assert!(text.contains(&summary), "{summary:?} missing from:\n{text}");
    received(&meshtwin, manifest.spans, manifest.metric_points, "grpc").await;

    // The twin publishes every 500 ms; wait for the graph with every span.
    let graph_url = format!("{}/api/v1/graph", meshtwin.web);
    let graph: GraphSnapshot = eventually(Duration::from_secs(30), "the whole graph", || {
        let url = graph_url.clone();
        async move {
            let graph: GraphSnapshot = serde_json::from_value(get(&url).await.json()).ok()?;
            let cart = graph.nodes.iter().find(|n| n.id == "boutique/cart")?;
            (cart.total_requests > 0).then_some(graph)
        }
    })
    .await;
    let error_ratio = |id: &str| {
        let node = graph.nodes.iter().find(|n| n.id == id).expect(id);
        node.total_errors as f64 / node.total_requests.max(1) as f64
    };
    // 60 % errors for half of the run; productcatalog's own rate is tiny.
    assert!(error_ratio("boutique/cart") > 0.15, "{graph:?}");
    assert!(error_ratio("boutique/productcatalog") < 0.05, "{graph:?}");
    meshtwin.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_dataset_replays_over_http_no_faster_than_asked() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = generate(dir.path(), &["--format", "json", "--duration", "10"]);
    let dataset = dir.path().join("dataset");
    assert!(dataset.join("traces.jsonl").exists());

    let meshtwin = Meshtwin::serve(&[]);
    let started = Instant::now();
    let (code, text) = run_meshtwin(&[
        "replay",
        dataset.to_str().unwrap(),
        "--endpoint",
        &meshtwin.otlp_http,
        "--protocol",
        "http",
        "--speed",
        "5",
    ]);
    assert_eq!(code, 0, "{text}");
    // 10 s of data at 5x: the last request is due ~2 s after the first
    // (the first and last requests are a little under 10 s apart).
    assert!(
        started.elapsed() >= Duration::from_millis(1_700),
        "paced: {:?}\n{text}",
        started.elapsed()
    );
    received(&meshtwin, manifest.spans, manifest.metric_points, "http").await;
    meshtwin.terminate();
}

#[test]
fn replay_to_a_dead_endpoint_stops_soon_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &["--duration", "10"]);
    let dataset = dir.path().join("dataset");
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let (code, text) =
        run_meshtwin(&["replay", dataset.to_str().unwrap(), "--endpoint", &endpoint]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("3 requests in a row"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
}

#[test]
fn generate_and_replay_refuse_bad_input_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let (code, text) = run_meshtwin(&[
        "generate",
        "--topology",
        "no-such",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 64, "{text}");
    assert!(text.contains("no bundled topology"), "{text}");

    let case = dir.path().join("bad.toml");
    std::fs::write(&case, CASE.replace("share = 0.6", "share = 0.6\nshaer = 1")).unwrap();
    let (code, text) = run_meshtwin(&[
        "generate",
        "--case",
        case.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 64, "{text}");
    assert!(text.contains("shaer"), "{text}");

    let (code, text) = run_meshtwin(&["replay", dir.path().to_str().unwrap()]);
    assert_eq!(code, 64, "{text}");
    assert!(text.contains("no manifest.json"), "{text}");
}
