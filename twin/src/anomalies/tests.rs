//! The twin's detectors on a simulated mesh: a fault on one service is
//! flagged on its node and its caller's edge, within half a minute, and
//! nowhere else; its alarms make one incident, resolved after the fault.

use std::sync::Arc;

use meshtwin_model::anomaly::{Deviation, Signal, Subject};
use meshtwin_model::ids::{SpanId, TraceId};
use meshtwin_model::incident::IncidentState;
use meshtwin_model::span::{ServiceIdentity, ServiceSpans, Span, SpanKind};

use crate::{Twin, TwinConfig};

const SECOND: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;
const T0: u64 = 1_790_000_000 * SECOND;
const CALLS_PER_SECOND: u64 = 10;

/// Deterministic jitter in [0, 1).
fn jitter(i: u64) -> f64 {
    let x = (i ^ 0x5DEE_CE66).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// One call from `caller` to `callee` starting at `start`, with its
/// client and server spans.
fn call(
    n: u64,
    caller: &Arc<ServiceIdentity>,
    callee: &Arc<ServiceIdentity>,
    start: u64,
    failed: bool,
) -> [ServiceSpans; 2] {
    let latency = (15.0 + 10.0 * jitter(n)) as u64 * MS;
    let trace = TraceId(u128::from(n).to_be_bytes());
    let span = |id: u64, parent: Option<u64>, kind, from, to| Span {
        trace_id: trace,
        span_id: SpanId(id.to_be_bytes()),
        parent_span_id: parent.map(|p| SpanId(p.to_be_bytes())),
        kind,
        start_unix_nanos: from,
        end_unix_nanos: to,
        failed,
        mtls: true,
        peer: None,
        links: vec![],
    };
    [
        ServiceSpans {
            service: caller.clone(),
            spans: vec![span(
                2 * n + 1,
                None,
                SpanKind::Client,
                start,
                start + latency + MS,
            )],
        },
        ServiceSpans {
            service: callee.clone(),
            spans: vec![span(
                2 * n + 2,
                Some(2 * n + 1),
                SpanKind::Server,
                start,
                start + latency,
            )],
        },
    ]
}

/// 30 minutes of frontend → payments and frontend → catalog at 10 calls/s
/// each; half of payments' calls fail from minute 25 for two minutes.
#[test]
fn a_fault_is_flagged_on_its_node_and_edge_within_half_a_minute_and_nowhere_else() {
    let frontend = Arc::new(ServiceIdentity::new("frontend", None));
    let payments = Arc::new(ServiceIdentity::new("payments", None));
    let catalog = Arc::new(ServiceIdentity::new("catalog", None));
    let fault = 1500..1620;
    let mut twin = Twin::new(&TwinConfig::default());
    let mut n = 0;
    let mut during_fault = None;
    for second in 0..1800 {
        let mut batch = Vec::new();
        for i in 0..CALLS_PER_SECOND {
            let start = T0 + second * SECOND + i * SECOND / CALLS_PER_SECOND;
            let failed = fault.contains(&second) && i % 2 == 0;
            batch.extend(call(n, &frontend, &payments, start, failed));
            batch.extend(call(n + 1, &frontend, &catalog, start, false));
            n += 2;
        }
        let wall = T0 + (second + 1) * SECOND;
        twin.ingest(&batch, wall);
        twin.advance(wall);
        if second == fault.start - 1 {
            assert_eq!(twin.counters().anomalies, 0, "{:?}", twin.anomalies());
        }
        if second == fault.start + 60 {
            during_fault = Some(twin.snapshot(1));
        }
    }
    let anomalies = twin.anomalies();
    let error_alarms: Vec<_> = anomalies
        .iter()
        .filter(|a| a.signal == Signal::ErrorRate)
        .collect();
    for (subject, id) in [
        (Subject::Node, "payments"),
        (Subject::Edge, "frontend->payments"),
    ] {
        let first = error_alarms
            .iter()
            .find(|a| a.subject == subject && a.id == id)
            .unwrap_or_else(|| panic!("no error-rate alarm on {id}: {anomalies:?}"));
        assert_eq!(first.deviation, Deviation::Above);
        let delay = first.at_unix_nanos - (T0 + fault.start * SECOND);
        assert!(
            delay <= 30 * SECOND,
            "{id} flagged {} s after the fault",
            delay / SECOND
        );
        assert!((0.4..=0.6).contains(&first.value), "{first:?}");
    }
    for anomaly in anomalies.iter() {
        assert!(
            anomaly.id.contains("payments"),
            "an alarm away from the fault: {anomaly:?}"
        );
        let at = anomaly.at_unix_nanos;
        assert!(
            at > T0 + fault.start * SECOND && at <= T0 + (fault.end + 60) * SECOND,
            "an alarm outside the fault: {anomaly:?}"
        );
    }
    let snapshot = during_fault.expect("taken during the fault");
    let node = snapshot
        .nodes
        .iter()
        .find(|n| n.id == "payments")
        .expect("payments");
    assert!(
        node.anomalies.iter().any(|a| a.signal == Signal::ErrorRate),
        "{node:?}"
    );
    let healthy = snapshot
        .nodes
        .iter()
        .find(|n| n.id == "catalog")
        .expect("catalog");
    assert!(healthy.anomalies.is_empty(), "{healthy:?}");
    let incidents = twin.incidents();
    assert_eq!(incidents.len(), 1, "one fault, one incident: {incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident.nodes, ["frontend", "payments"]);
    assert_eq!(
        incident.state,
        IncidentState::Resolved,
        "quiet since the fault ended"
    );
    let opened = incident.opened_unix_nanos - (T0 + fault.start * SECOND);
    assert!(
        opened <= 30 * SECOND,
        "opened {} s after the fault",
        opened / SECOND
    );
    assert_eq!(incident.anomalies, anomalies.len() as u64);
    let after = twin.snapshot(2);
    let node = after
        .nodes
        .iter()
        .find(|n| n.id == "payments")
        .expect("payments");
    assert!(
        node.anomalies.is_empty(),
        "still alarming after recovery: {node:?}"
    );
}

#[test]
fn a_failure_among_a_few_calls_is_not_enough_and_many_failures_are() {
    use super::errors_unlikely;
    assert!(!errors_unlikely(0, 0, 0.0));
    assert!(!errors_unlikely(1, 5, 0.005), "one of five");
    assert!(errors_unlikely(2, 5, 0.005), "two of five");
    assert!(!errors_unlikely(2, 12, 0.005));
    assert!(errors_unlikely(3, 12, 0.005));
    assert!(errors_unlikely(8, 100, 0.005), "8 % of a busy service");
    assert!(
        !errors_unlikely(110, 10_000, 0.01),
        "1.1 % where 1 % is usual"
    );
    assert!(errors_unlikely(300, 10_000, 0.01));
}
