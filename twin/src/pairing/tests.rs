use meshtwin_model::ids::{SpanId, TraceId};
use meshtwin_model::span::{PeerHint, Span, SpanKind};
use petgraph::stable_graph::NodeIndex;
use proptest::prelude::*;

use super::*;

const SECOND: u64 = 1_000_000_000;
const WAIT: u64 = 10 * SECOND;
const TICK: u64 = SECOND / 2;

fn client(n: u32) -> Span {
    let mut trace = [0u8; 16];
    trace[..4].copy_from_slice(&n.to_be_bytes());
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId([1; 8]),
        parent_span_id: None,
        kind: SpanKind::Client,
        start_unix_nanos: 0,
        end_unix_nanos: 1,
        failed: false,
        mtls: false,
        peer: Some(PeerHint::Service("b".into())),
        links: vec![],
    }
}

fn node() -> NodeRef {
    let mut graph = crate::graph::ServiceGraph::new(10, 10);
    let identity = std::sync::Arc::new(meshtwin_model::span::ServiceIdentity::new("a", None));
    let index: NodeIndex = graph.service(&identity, 0).unwrap();
    graph.node_ref(index)
}

proptest! {
    /// However spans and ticks fall, the watched span turns into a virtual
    /// call no sooner than `pair_wait` after it arrived, and no later than
    /// two waits and a tick.
    #[test]
    fn a_half_waits_at_least_one_and_at_most_about_two_waits(
        others in prop::collection::vec(0u64..60_000, 0..40),
        watched_at in 0u64..40_000,
    ) {
        let mut pairing = Pairing::new(WAIT, 1_000_000);
        let mut counters = TwinCounters::default();
        let mut calls = Vec::new();
        let watched_at = watched_at * 1_000_000; // ms → ns
        let mut arrivals: Vec<(u64, u32)> = others.iter().enumerate().map(|(i, ms)| (ms * 1_000_000, i as u32 + 1)).collect();
        arrivals.push((watched_at, 0));
        arrivals.sort();
        let mut next = 0;
        let mut expired_at = None;
        let mut now = 0;
        while now <= 90 * SECOND && expired_at.is_none() {
            while next < arrivals.len() && arrivals[next].0 <= now {
                let span = client(arrivals[next].1);
                let half = Half::new(&span, node(), span.end_unix_nanos);
                pairing.offer(&span, half, now, &mut counters, &mut calls);
                next += 1;
            }
            pairing.expire(now, &mut counters, &mut calls);
            let key = client(0).key();
            let pending = pairing.current.parents.contains_key(&key)
                || pairing.previous.parents.contains_key(&key);
            if now >= watched_at && !pending {
                expired_at = Some(now);
            }
            now += TICK;
        }
        let expired_at = expired_at.expect("the watched span expires");
        let waited = expired_at - watched_at;
        prop_assert!(waited >= WAIT, "expired after {waited} ns");
        prop_assert!(waited <= 2 * WAIT + 2 * TICK, "expired after {waited} ns");
    }
}

#[test]
fn the_limit_expires_whole_generations_early_and_counts_them() {
    let mut pairing = Pairing::new(WAIT, 4);
    let mut counters = TwinCounters::default();
    let mut calls = Vec::new();
    for n in 0..9 {
        let span = client(n);
        let half = Half::new(&span, node(), 1);
        pairing.offer(&span, half, 0, &mut counters, &mut calls);
        assert!(pairing.pending() <= 4);
    }
    assert_eq!(counters.pending_evicted + pairing.pending() as u64, 9);
    assert_eq!(
        counters.virtual_edges, counters.pending_evicted,
        "evicted callers still count as calls"
    );
}
