use super::*;

fn node(id: &str, requests: u64, error_ratio: f64, p99: f64) -> PastNode {
    PastNode {
        node: id.into(),
        name: id.into(),
        namespace: None,
        kind: "service".into(),
        health: "healthy".into(),
        instances: 1,
        versions: String::new(),
        regions: String::new(),
        requests_1m: requests,
        errors_1m: (requests as f64 * error_ratio) as u64,
        rate_per_second: requests as f64 / 60.0,
        error_ratio,
        p50_ms: Some(p99 / 2.0),
        p90_ms: Some(p99),
        p99_ms: Some(p99),
        total_requests: requests,
        total_errors: 0,
    }
}

fn edge(source: &str, target: &str, requests: u64, error_ratio: f64, p99: f64) -> PastEdge {
    PastEdge {
        source: source.into(),
        target: target.into(),
        connection_type: "direct".into(),
        health: "healthy".into(),
        requests_1m: requests,
        errors_1m: 0,
        rate_per_second: requests as f64 / 60.0,
        error_ratio,
        client_p50_ms: None,
        client_p90_ms: None,
        client_p99_ms: Some(p99),
        server_p50_ms: None,
        server_p90_ms: None,
        server_p99_ms: Some(p99 / 2.0),
        total_requests: requests,
        total_failed: 0,
        total_mtls: 0,
    }
}

fn graph(at: i64, nodes: Vec<PastNode>, edges: Vec<PastEdge>) -> PastGraph {
    PastGraph {
        requested_unix_nanos: at,
        at_unix_nanos: at - 1,
        nodes,
        edges,
    }
}

#[test]
fn appeared_vanished_and_degraded_are_told_apart() {
    let before = graph(
        10,
        vec![
            node("gw", 60, 0.0, 10.0),
            node("legacy", 60, 0.0, 5.0),
            node("idle", 0, 0.0, 1.0),
        ],
        vec![
            edge("gw", "legacy", 60, 0.0, 5.0),
            edge("gw", "orders", 600, 0.001, 20.0),
        ],
    );
    let after = graph(
        20,
        vec![
            node("gw", 60, 0.0, 10.4),
            node("legacy", 0, 0.0, 5.0),
            node("idle", 3, 0.0, 1.0),
        ],
        vec![
            edge("gw", "legacy", 0, 0.0, 5.0),
            edge("gw", "orders", 150, 0.3, 80.0),
            edge("gw", "payments", 60, 0.0, 9.0),
        ],
    );
    let d = diff(&before, &after, 10);
    assert_eq!((d.from_unix_nanos, d.from_snapshot_unix_nanos), (10, 9));
    assert_eq!(d.nodes_added, ["idle"]);
    assert_eq!(d.nodes_removed, ["legacy"]);
    let ids = |keys: &[EdgeKey]| keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&d.edges_added), ["gw->payments"]);
    assert_eq!(ids(&d.edges_removed), ["gw->legacy"]);
    let moved: Vec<(&str, &str, Verdict)> = d
        .changes
        .iter()
        .map(|c| (c.id.as_str(), c.metric, c.verdict))
        .collect();
    // 29.9 points of errors, p99 ×4 (3.4 thresholds), traffic ÷4 (2).
    assert_eq!(
        moved,
        [
            ("gw->orders", "error_ratio", Verdict::Degraded),
            ("gw->orders", "p99_ms", Verdict::Degraded),
            ("gw->orders", "rate_per_second", Verdict::Degraded),
        ]
    );
    assert!((d.changes[0].score - 29.9).abs() < 1e-9);
    assert_eq!(d.verdicts.get("gw->orders"), Some(&Verdict::Degraded));
    assert_eq!(d.verdicts.get("gw"), None, "4 % slower is not news");
    assert_eq!(diff(&before, &after, 1).changes.len(), 1);
}

#[test]
fn recovery_reads_as_improved_and_a_surge_as_surged() {
    let before = graph(1, vec![node("a", 60, 0.2, 100.0)], vec![]);
    let after = graph(2, vec![node("a", 240, 0.0, 20.0)], vec![]);
    let d = diff(&before, &after, 10);
    let verdicts: Vec<(&str, Verdict)> = d.changes.iter().map(|c| (c.metric, c.verdict)).collect();
    assert_eq!(
        verdicts,
        [
            ("error_ratio", Verdict::Improved),
            ("p99_ms", Verdict::Improved),
            ("rate_per_second", Verdict::Surged),
        ]
    );
    assert_eq!(d.verdicts.get("a"), Some(&Verdict::Improved));
    let same = diff(&before, &before, 10);
    assert!(same.changes.is_empty() && same.nodes_added.is_empty() && same.verdicts.is_empty());
}
