//! Replaying the same span set (from yesterday) in two different batch
//! orders, over two transports, into two processes builds identical
//! graphs — and the graph is the one the spans describe.

use std::collections::BTreeMap;
use std::time::Duration;

use meshtwin_datasets::generator::{GeneratedSpan, requests_by_instance};
use meshtwin_datasets::{Exporter, OtlpProtocol, Topology, TraceGenerator};
use meshtwin_model::graph::GraphSnapshot;
use meshtwin_tests::client::{get, metric};
use meshtwin_tests::otlp::now_nanos;
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

const TRACES: u64 = 300;
const DAY: u64 = 86_400_000_000_000;

fn span_set() -> (
    Vec<GeneratedSpan>,
    Vec<meshtwin_datasets::generator::Instance>,
) {
    let mut generator = TraceGenerator::new(Topology::online_boutique(), 7);
    let yesterday = now_nanos() - DAY;
    let spans = (0..TRACES)
        .flat_map(|i| generator.trace(yesterday + i * 50_000_000))
        .collect();
    (spans, generator.instances().to_vec())
}

async fn send_all(
    endpoint: &str,
    protocol: OtlpProtocol,
    batches: Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>,
) {
    let mut exporter = Exporter::new(endpoint, protocol).unwrap();
    for request in batches {
        exporter.export(request).await.expect("export accepted");
    }
}

/// What a graph says, minus what depends on when it was looked at.
type Summary = (
    BTreeMap<String, (String, u64, u64, Vec<String>, u32)>,
    BTreeMap<String, (String, u64, u64)>,
);

fn summary(graph: &GraphSnapshot) -> Summary {
    let nodes = graph
        .nodes
        .iter()
        .map(|n| {
            let kind = format!("{:?}", n.kind);
            (
                n.id.clone(),
                (
                    kind,
                    n.total_requests,
                    n.total_errors,
                    n.versions.clone(),
                    n.instances,
                ),
            )
        })
        .collect();
    let edges = graph
        .edges
        .iter()
        .map(|e| {
            (
                e.id.clone(),
                (
                    format!("{:?}", e.connection_type),
                    e.total_requests,
                    e.total_failed,
                ),
            )
        })
        .collect();
    (nodes, edges)
}

/// Waits until the twin has taken every span in, then reads its graph and
/// its edge series.
async fn settled(meshtwin: &Meshtwin, spans: usize) -> (GraphSnapshot, Vec<String>) {
    let metrics_url = format!("{}/metrics", meshtwin.web);
    eventually(Duration::from_secs(30), "every span ingested", || async {
        let page = get(&metrics_url).await.text();
        (metric(&page, "meshtwin_twin_spans_ingested_total") == Some(spans as f64)).then_some(())
    })
    .await;
    let graph = serde_json::from_value(get(&format!("{}/api/v1/graph", meshtwin.web)).await.json())
        .unwrap();
    let page = get(&metrics_url).await.text();
    let series = page
        .lines()
        .filter(|l| l.starts_with("traces_service_graph"))
        .map(str::to_owned)
        .collect();
    (graph, series)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_batch_orders_of_yesterdays_spans_build_identical_graphs() {
    let (spans, instances) = span_set();
    let total = spans.len();

    // Order A: 20 traces at a time, one request per instance, in order.
    let per_trace = spans.len() / TRACES as usize + 1;
    let in_order: Vec<_> = spans
        .chunks(20 * per_trace)
        .flat_map(|chunk| requests_by_instance(&instances, chunk.to_vec()))
        .map(|(_, request)| request)
        .collect();
    // Order B: newest first, in chunks of 37 spans, requests reversed.
    let mut reversed = spans.clone();
    reversed.reverse();
    let mut out_of_order: Vec<_> = reversed
        .chunks(37)
        .flat_map(|chunk| requests_by_instance(&instances, chunk.to_vec()))
        .map(|(_, request)| request)
        .collect();
    out_of_order.reverse();

    let a = Meshtwin::serve(&[]);
    let b = Meshtwin::serve(&[]);
    send_all(&a.otlp_http, OtlpProtocol::HttpProtobuf, in_order).await;
    send_all(&b.otlp_grpc, OtlpProtocol::Grpc, out_of_order).await;
    let (graph_a, series_a) = settled(&a, total).await;
    let (graph_b, series_b) = settled(&b, total).await;

    assert_eq!(summary(&graph_a), summary(&graph_b));
    assert_eq!(
        series_a, series_b,
        "identical counts and latency histograms"
    );
    assert!(series_a.len() > 16 * 3, "every edge has series");

    // And it is the graph the spans describe: one edge per client span.
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for generated in &spans {
        if generated.span.kind != SpanKind::Client as i32 {
            continue;
        }
        let caller = &instances[generated.instance].service;
        let callee = generated
            .span
            .attributes
            .iter()
            .find(|kv| kv.key == "server.address")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s) => {
                    Some(s.clone())
                }
                _ => None,
            })
            .expect("every client span names its server");
        let target = if callee == "redis-cart" {
            callee
        } else {
            format!("boutique/{callee}")
        };
        *expected
            .entry(format!("boutique/{caller}->{target}"))
            .or_default() += 1;
    }
    let got: BTreeMap<String, u64> = graph_a
        .edges
        .iter()
        .map(|e| (e.id.clone(), e.total_requests))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(graph_a.nodes.len(), 12);
}
