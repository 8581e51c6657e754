//! The span store of a real `meshtwin serve`: every span whose export was
//! acknowledged is in the Parquet segments after a `kill -9` and a
//! restart on the same data directory; and after a clean stop too.

use std::collections::BTreeSet;
use std::path::Path;

use meshtwin_datasets::generator::requests_by_instance;
use meshtwin_datasets::{Exporter, OtlpProtocol, Topology, TraceGenerator};
use meshtwin_store::segments;
use meshtwin_tests::client::post;
use meshtwin_tests::otlp::now_nanos;
use meshtwin_tests::sandbox::Meshtwin;

/// `meshtwin serve` on `dir` with the span store on.
fn serve_with_store(dir: &Path) -> Meshtwin {
    let config = dir.join("meshtwin.toml");
    std::fs::write(&config, "[store]\nenabled = true\n").unwrap();
    Meshtwin::serve_in(dir, &["--config", config.to_str().unwrap()])
}

/// Sends 200 Online Boutique traces, one request per instance and 20
/// traces; returns the span ids the collector acknowledged (hex).
async fn send_acknowledged(endpoint: &str) -> BTreeSet<String> {
    let mut generator = TraceGenerator::new(Topology::online_boutique(), 11);
    let instances = generator.instances().to_vec();
    let start = now_nanos();
    let spans: Vec<_> = (0..200)
        .flat_map(|i| generator.trace(start + i * 10_000_000))
        .collect();
    let mut exporter = Exporter::new(endpoint, OtlpProtocol::Grpc).unwrap();
    let mut acknowledged = BTreeSet::new();
    for chunk in spans.chunks(300) {
        for (_, request) in requests_by_instance(&instances, chunk.to_vec()) {
            let ids: Vec<String> = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.span_id.iter().map(|b| format!("{b:02x}")).collect())
                .collect();
            exporter.export(request).await.expect("acknowledged");
            acknowledged.extend(ids);
        }
    }
    acknowledged
}

/// Every span id in the store's segments, and how many rows there are.
fn stored(data_dir: &Path) -> (BTreeSet<String>, usize) {
    let mut ids = Vec::new();
    for segment in segments::list(&data_dir.join("store/spans")).unwrap() {
        ids.extend(segments::span_ids(&segment.path).unwrap());
    }
    let rows = ids.len();
    (ids.into_iter().collect(), rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_acknowledged_span_is_lost_to_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let meshtwin = serve_with_store(dir.path());
    let acknowledged = send_acknowledged(&meshtwin.otlp_grpc).await;
    assert!(acknowledged.len() > 2_000, "{}", acknowledged.len());
    // Killed at once: segments are written every 10 s, so these spans
    // are only in the log.
    meshtwin.kill();
    assert!(
        stored(dir.path()).0.is_empty(),
        "nothing flushed before the kill"
    );

    let restarted = serve_with_store(dir.path());
    let (ids, rows) = stored(dir.path());
    assert_eq!(ids, acknowledged, "every acknowledged span, after recovery");
    assert_eq!(rows, acknowledged.len(), "and each once");
    restarted.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_is_on_by_default_and_off_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let meshtwin = Meshtwin::serve_in(dir.path(), &[]);
    let acknowledged = send_acknowledged(&meshtwin.otlp_grpc).await;
    meshtwin.terminate();
    assert_eq!(stored(dir.path()).0, acknowledged);

    let off = tempfile::tempdir().unwrap();
    let config = off.path().join("meshtwin.toml");
    std::fs::write(&config, "[store]\nenabled = false\n").unwrap();
    let data = off.path().join("data");
    let meshtwin = Meshtwin::serve_in(&data, &["--config", config.to_str().unwrap()]);
    send_acknowledged(&meshtwin.otlp_grpc).await;
    let reply = post(
        &format!("{}/api/v1/query", meshtwin.web),
        "application/json",
        &[],
        br#"{"sql": "SELECT 1"}"#.to_vec(),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 503);
    assert!(reply.json()["error"].as_str().unwrap().contains("store"));
    meshtwin.terminate();
    assert!(!data.join("store").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_stop_writes_every_span_to_segments() {
    let dir = tempfile::tempdir().unwrap();
    let meshtwin = serve_with_store(dir.path());
    let acknowledged = send_acknowledged(&meshtwin.otlp_grpc).await;
    let (status, _) = meshtwin.terminate();
    assert!(status.success());
    let (ids, rows) = stored(dir.path());
    assert_eq!(ids, acknowledged);
    assert_eq!(rows, acknowledged.len());
}
