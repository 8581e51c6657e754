//! A span store that is behind sheds load (before decoding, over gRPC):
//! the sender gets a retryable refusal, the store counts it, and the twin
//! gets nothing. Real gRPC on 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use meshtwin_collector::{CollectorMetrics, Ingest};
use meshtwin_store::{SpanStore, StoreConfig};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn one_span() -> ExportTraceServiceRequest {
    // Recent: retention keeps it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let span = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "GET /".into(),
        start_time_unix_nano: now - 1_000_000,
        end_time_unix_nano: now,
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

async fn export_to(store: Arc<SpanStore>) -> (Result<(), tonic::Status>, usize) {
    let (spans, mut twin) = tokio::sync::mpsc::channel(8);
    let ingest = Ingest::new(spans, Arc::new(CollectorMetrics::default())).with_store(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(meshtwin_collector::grpc::serve(
        listener,
        ingest,
        4 << 20,
        async {
            let _ = stopped.await;
        },
    ));
    let mut client = TraceServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let result = client.export(one_span()).await.map(|_| ());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let mut batches = 0;
    while twin.try_recv().is_ok() {
        batches += 1;
    }
    (result, batches)
}

#[tokio::test]
async fn a_store_that_is_behind_gets_the_sender_a_retryable_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path().to_owned());
    config.max_waiting_spans = 0;
    let (store, _) = SpanStore::open(config).unwrap();
    let store = Arc::new(store);
    let (result, batches) = export_to(store.clone()).await;
    let status = result.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("behind"), "{status:?}");
    assert_eq!(batches, 0, "the twin got nothing");
    let counters = store.counters();
    assert_eq!(counters.requests_refused.load(Ordering::Relaxed), 1);
    assert_eq!(counters.requests_logged.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_store_with_room_logs_the_request_as_received() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(StoreConfig::new(dir.path().to_owned())).unwrap();
    let store = Arc::new(store);
    let (result, batches) = export_to(store.clone()).await;
    result.unwrap();
    assert_eq!(batches, 1);
    assert_eq!(store.counters().requests_logged.load(Ordering::Relaxed), 1);
    store.flush().unwrap();
    let segments = store.segments().unwrap();
    let ids = meshtwin_store::segments::span_ids(&segments[0].path).unwrap();
    assert_eq!(ids, ["0202020202020202"]);
}
