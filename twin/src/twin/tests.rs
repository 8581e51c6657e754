use std::sync::Arc;

use meshtwin_model::graph::{ConnectionType, GraphSnapshot, NodeKind};
use meshtwin_model::ids::{SpanId, SpanKey, TraceId};
use meshtwin_model::span::{PeerHint, ServiceIdentity, ServiceSpans, Span, SpanKind};
use proptest::prelude::*;

use super::*;

const MS: u64 = 1_000_000;
/// Some Tuesday in 2026, in Unix nanoseconds.
const T0: u64 = 1_790_000_000 * SECOND;

fn service(name: &str) -> Arc<ServiceIdentity> {
    Arc::new(ServiceIdentity::new(name, None))
}

fn span(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    kind: SpanKind,
    service: &Arc<ServiceIdentity>,
    start_ms: u64,
    end_ms: u64,
) -> ServiceSpans {
    let span = Span {
        trace_id: TraceId([trace; 16]),
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|p| SpanId([p; 8])),
        kind,
        start_unix_nanos: T0 + start_ms * MS,
        end_unix_nanos: T0 + end_ms * MS,
        failed: false,
        mtls: false,
        peer: None,
        links: vec![],
    };
    ServiceSpans {
        service: service.clone(),
        spans: vec![span],
    }
}

/// The one span of a group built by [`span`].
trait One {
    fn one(&mut self) -> &mut Span;
}

impl One for ServiceSpans {
    fn one(&mut self) -> &mut Span {
        &mut self.spans[0]
    }
}

fn twin() -> Twin {
    Twin::new(&TwinConfig::default())
}

/// Wall clock shortly after the spans.
const WALL: u64 = T0 + 2 * SECOND;

fn edge<'a>(snap: &'a GraphSnapshot, id: &str) -> &'a meshtwin_model::graph::EdgeView {
    snap.edges
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no edge {id} in {:?}", snap.edges))
}

#[test]
fn client_and_server_halves_pair_in_either_order() {
    let (a, b) = (service("a"), service("b"));
    let client = span(1, 1, None, SpanKind::Client, &a, 0, 30);
    let server = span(1, 2, Some(1), SpanKind::Server, &b, 5, 25);
    for batches in [
        vec![vec![client.clone()], vec![server.clone()]],
        vec![vec![server.clone()], vec![client.clone()]],
        vec![vec![server.clone(), client.clone()]],
    ] {
        let mut t = twin();
        for batch in &batches {
            t.ingest(batch, WALL);
        }
        let snap = t.snapshot(1);
        let e = edge(&snap, "a->b");
        assert_eq!(e.total_requests, 1);
        assert_eq!(e.connection_type, ConnectionType::Direct);
        let w = &e.windows.last_1m;
        assert_eq!(w.client_latency_ms.unwrap().p50.round(), 30.0);
        assert_eq!(w.server_latency_ms.unwrap().p50.round(), 20.0);
        assert_eq!(t.counters().pairs_matched, 1);
        assert_eq!(
            t.counters().pending_spans,
            1,
            "only the server span remains, as a parent"
        );
    }
}

#[test]
fn requests_served_are_kept_per_locality_too() {
    let mut twin = twin();
    let in_region = |region: &str| {
        let mut identity = ServiceIdentity::new("payments", None);
        identity.region = Some(region.into());
        Arc::new(identity)
    };
    let (a, b) = (in_region("region-a"), in_region("region-b"));
    let mut batch = Vec::new();
    for i in 0..10u8 {
        let mut served = span(i, 1, None, SpanKind::Server, &a, 0, 5);
        served.one().failed = i < 6;
        batch.push(served);
        batch.push(span(i, 2, None, SpanKind::Server, &b, 0, 5));
    }
    batch.push(span(
        99,
        1,
        None,
        SpanKind::Server,
        &service("payments"),
        0,
        5,
    ));
    twin.ingest(&batch, WALL);
    let snap = twin.snapshot(WALL);
    let node = snap.nodes.iter().find(|n| n.id == "payments").unwrap();
    assert_eq!(node.windows.last_1m.requests, 21);
    let localities: Vec<(&str, u64, f64)> = node
        .localities
        .iter()
        .map(|l| {
            (
                l.locality.as_str(),
                l.windows.last_1m.requests,
                l.windows.last_1m.error_ratio,
            )
        })
        .collect();
    assert_eq!(localities, [("region-a", 10, 0.6), ("region-b", 10, 0.0)]);
}

#[test]
fn a_server_under_an_internal_parent_of_another_service_makes_an_edge() {
    let (a, b) = (service("a"), service("b"));
    let mut t = twin();
    t.ingest(&[span(1, 2, Some(1), SpanKind::Server, &b, 5, 25)], WALL);
    t.ingest(&[span(1, 1, None, SpanKind::Internal, &a, 0, 30)], WALL);
    let snap = t.snapshot(1);
    let e = edge(&snap, "a->b");
    assert_eq!(e.total_requests, 1);
    assert!(e.windows.last_1m.client_latency_ms.is_none());
    assert_eq!(t.counters().pairs_internal_parent, 1);
}

#[test]
fn nested_spans_of_one_service_make_no_edge() {
    let a = service("a");
    let mut t = twin();
    t.ingest(
        &[
            span(1, 1, None, SpanKind::Server, &a, 0, 30),
            span(1, 2, Some(1), SpanKind::Internal, &a, 1, 20),
            span(1, 3, Some(2), SpanKind::Server, &a, 2, 10),
        ],
        WALL,
    );
    assert!(t.snapshot(1).edges.is_empty());
}

#[test]
fn a_database_call_is_an_edge_to_a_database_node_at_once() {
    let cart = service("cart");
    let mut call = span(1, 1, None, SpanKind::Client, &cart, 0, 3);
    call.one().peer = Some(PeerHint::Database {
        system: "redis".into(),
        name: "redis-cart".into(),
    });
    call.one().failed = true;
    let mut t = twin();
    t.ingest(&[call], WALL);
    let snap = t.snapshot(1);
    let e = edge(&snap, "cart->redis-cart");
    assert_eq!(e.connection_type, ConnectionType::Database);
    assert_eq!((e.total_requests, e.total_failed), (1, 1));
    let db = snap.nodes.iter().find(|n| n.id == "redis-cart").unwrap();
    assert_eq!(db.kind, NodeKind::Database);
    assert_eq!((db.total_requests, db.total_errors), (1, 1));
    assert_eq!(t.counters().pending_spans, 0);
}

#[test]
fn an_unmatched_client_with_peer_service_becomes_a_virtual_edge_after_the_wait() {
    let a = service("a");
    let mut call = span(1, 1, None, SpanKind::Client, &a, 0, 3);
    call.one().peer = Some(PeerHint::Service("billing-api".into()));
    let mut t = twin();
    t.ingest(&[call], WALL);
    t.advance(WALL + 7 * SECOND);
    assert!(
        t.snapshot(1).edges.is_empty(),
        "still waiting for a server span"
    );
    t.advance(WALL + 20 * SECOND);
    let snap = t.snapshot(2);
    assert_eq!(
        edge(&snap, "a->billing-api").connection_type,
        ConnectionType::VirtualNode
    );
    assert_eq!(t.counters().virtual_edges, 1);
}

#[test]
fn an_unmatched_client_naming_a_known_service_of_its_namespace_joins_that_node() {
    // The trace context was lost on the way (the server's span started a
    // trace of its own), but the client says where it called.
    let a = Arc::new(ServiceIdentity::new("checkout", Some("shop")));
    let b = Arc::new(ServiceIdentity::new("currency", Some("shop")));
    let mut call = span(1, 1, None, SpanKind::Client, &a, 0, 3);
    call.one().peer = Some(PeerHint::Address("currency:7000".into()));
    let mut t = twin();
    t.ingest(&[call, span(2, 5, None, SpanKind::Server, &b, 1, 2)], WALL);
    t.advance(WALL + 20 * SECOND);
    let snap = t.snapshot(1);
    assert_eq!(snap.nodes.len(), 2, "{:?}", snap.nodes);
    edge(&snap, "shop/checkout->shop/currency");
}

#[test]
fn unmatched_halves_without_hints_are_counted_not_drawn() {
    let (a, b) = (service("a"), service("b"));
    let mut t = twin();
    t.ingest(
        &[
            span(1, 1, None, SpanKind::Client, &a, 0, 3),
            span(2, 5, Some(4), SpanKind::Server, &b, 0, 3),
        ],
        WALL,
    );
    t.advance(WALL + 20 * SECOND);
    let c = t.counters();
    assert_eq!(c.unpaired_callers_expired, 1);
    assert_eq!(c.unpaired_callees_expired, 1);
    assert_eq!(c.pending_spans, 0);
    assert!(t.snapshot(1).edges.is_empty());
}

#[test]
fn producer_and_consumer_pair_through_a_span_link() {
    let (p, c) = (service("orders"), service("shipping"));
    let producer = span(1, 1, None, SpanKind::Producer, &p, 0, 2);
    let mut consumer = span(9, 7, None, SpanKind::Consumer, &c, 50, 60);
    consumer.one().links = vec![SpanKey {
        trace_id: TraceId([1; 16]),
        span_id: SpanId([1; 8]),
    }];
    let mut t = twin();
    t.ingest(&[consumer, producer], WALL);
    let snap = t.snapshot(1);
    assert_eq!(
        edge(&snap, "orders->shipping").connection_type,
        ConnectionType::MessagingSystem
    );
}

#[test]
fn limits_drop_and_count() {
    let config = TwinConfig {
        max_nodes: 2,
        max_pending_spans: 2,
        ..TwinConfig::default()
    };
    let mut t = Twin::new(&config);
    let (a, b, c) = (service("a"), service("b"), service("c"));
    t.ingest(
        &[
            span(1, 1, None, SpanKind::Client, &a, 0, 3),
            span(2, 1, None, SpanKind::Client, &b, 0, 3),
            span(3, 1, None, SpanKind::Client, &c, 0, 3),
            span(4, 1, None, SpanKind::Client, &a, 0, 3),
        ],
        WALL,
    );
    let counters = t.counters();
    assert_eq!(counters.dropped_node_limit, 1, "service c does not fit");
    assert_eq!(
        counters.pending_evicted, 2,
        "the fourth span expires the generation of the first two early"
    );
    assert_eq!(counters.pending_spans, 1);
    assert_eq!(t.snapshot(1).nodes.len(), 2);
}

#[test]
fn idle_nodes_and_edges_expire() {
    let (a, b) = (service("a"), service("b"));
    let mut t = twin();
    t.ingest(
        &[
            span(1, 1, None, SpanKind::Client, &a, 0, 30),
            span(1, 2, Some(1), SpanKind::Server, &b, 5, 25),
        ],
        WALL,
    );
    t.advance(WALL + 200 * SECOND);
    assert_eq!(t.snapshot(1).edges.len(), 1, "not idle for long enough yet");
    t.advance(WALL + 400 * SECOND);
    let snap = t.snapshot(2);
    assert!(snap.nodes.is_empty() && snap.edges.is_empty());
    assert_eq!(
        (t.counters().nodes_expired, t.counters().edges_expired),
        (2, 1)
    );
}

#[test]
fn a_call_whose_caller_node_expired_meanwhile_is_counted_not_misattributed() {
    let config = TwinConfig {
        pair_wait_seconds: 3600,
        idle_expiry_seconds: 60,
        ..TwinConfig::default()
    };
    let mut t = Twin::new(&config);
    let (a, b, c) = (service("a"), service("b"), service("c"));
    t.ingest(&[span(1, 1, None, SpanKind::Client, &a, 0, 3)], WALL);
    t.advance(WALL + 100 * SECOND);
    assert!(
        t.snapshot(1).nodes.is_empty(),
        "a expired, its client half still pending"
    );
    // c takes a's old slot in the graph; then a's callee finally reports.
    let late = WALL + 100 * SECOND;
    let mut newcomer = span(2, 1, None, SpanKind::Server, &c, 0, 1);
    newcomer.one().end_unix_nanos = late;
    let mut callee = span(1, 2, Some(1), SpanKind::Server, &b, 1, 2);
    callee.one().end_unix_nanos = late;
    t.ingest(&[newcomer, callee], late);
    let snap = t.snapshot(2);
    assert!(
        snap.edges.is_empty(),
        "no edge drawn from c: {:?}",
        snap.edges
    );
    assert_eq!(t.counters().stale_calls, 1);
}

#[test]
fn spans_from_the_future_count_as_arriving_now() {
    let a = service("a");
    let mut t = twin();
    let mut s = span(1, 1, None, SpanKind::Server, &a, 0, 10);
    s.one().end_unix_nanos = WALL + 3_600 * SECOND;
    t.ingest(&[s], WALL);
    assert_eq!(t.now(), WALL);
    assert_eq!(t.counters().future_spans, 1);
}

/// Three-tier traces: `gateway → api → (db | worker)`, with errors and
/// latencies drawn by proptest.
fn traces(count: usize) -> impl Strategy<Value = Vec<ServiceSpans>> {
    prop::collection::vec((1u64..500, 1u64..200, any::<bool>(), any::<bool>()), count).prop_map(
        |draws| {
            let (gw, api, worker) = (service("gateway"), service("api"), service("worker"));
            let mut spans = Vec::new();
            for (i, (total, inner, use_db, failed)) in draws.into_iter().enumerate() {
                let trace = TraceId((i as u128 + 1).to_be_bytes());
                let mk = |id: u8, parent: Option<u8>, kind, svc: &Arc<ServiceIdentity>, s, e| {
                    let mut sp = span(0, id, parent, kind, svc, s, e);
                    let one = sp.one();
                    one.trace_id = trace;
                    one.start_unix_nanos += i as u64 * 7 * MS;
                    one.end_unix_nanos += i as u64 * 7 * MS;
                    sp
                };
                spans.push(mk(1, None, SpanKind::Client, &gw, 0, total + inner + 4));
                let mut server = mk(2, Some(1), SpanKind::Server, &api, 1, total + inner + 2);
                server.one().failed = failed;
                spans.push(server);
                let mut call = mk(3, Some(2), SpanKind::Client, &api, 2, inner + 2);
                if use_db {
                    call.one().peer = Some(PeerHint::Database {
                        system: "postgresql".into(),
                        name: "orders-db".into(),
                    });
                    spans.push(call);
                } else {
                    spans.push(call);
                    spans.push(mk(4, Some(3), SpanKind::Server, &worker, 3, inner + 1));
                }
            }
            spans
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn replays_in_any_batch_order_build_identical_graphs(
        spans in traces(40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        order in any::<prop::sample::Index>(),
    ) {
        let build = |batches: Vec<Vec<ServiceSpans>>| {
            let mut t = twin();
            for batch in &batches {
                t.ingest(batch, WALL);
            }
            t.advance(WALL + 15 * SECOND);
            (t.snapshot(1), t.series(), t.counters())
        };
        let in_order = build(vec![spans.clone()]);

        // Cut the same spans into batches, shuffle spans and batches.
        let mut shuffled = spans.clone();
        let n = shuffled.len();
        shuffled.rotate_left(order.index(n));
        shuffled.reverse();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(n)).collect();
        bounds.extend([0, n]);
        bounds.sort_unstable();
        bounds.dedup();
        let mut batches: Vec<Vec<ServiceSpans>> = bounds.windows(2).map(|w| shuffled[w[0]..w[1]].to_vec()).collect();
        batches.reverse();
        let reordered = build(batches);

        prop_assert_eq!(&in_order.0, &reordered.0);
        prop_assert_eq!(&in_order.1, &reordered.1);
        prop_assert_eq!(in_order.2.pairs_matched, reordered.2.pairs_matched);
        let gateway_calls = in_order.0.edges.iter().find(|e| e.id == "gateway->api").map(|e| e.total_requests);
        prop_assert_eq!(gateway_calls, Some(40));
    }
}
