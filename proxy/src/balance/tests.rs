use std::time::Duration;

use super::*;
use crate::config::{OutlierPolicy, ProxyConfig};
use crate::routes::Routes;

/// `ledger` with two endpoints here (region-a), one in region-b and one
/// pinned to priority 5.
fn ledger(extra: &str) -> Arc<Destination> {
    let text = format!(
        r#"
locality = "region-a"
[identity]
service = "payments"
trust_anchors = "/ca.pem"
[[services]]
name = "ledger"
{extra}
[[services.endpoints]]
address = "127.0.0.1:1001"
locality = "region-a"
[[services.endpoints]]
address = "127.0.0.1:1002"
locality = "region-a"
[[services.endpoints]]
address = "127.0.0.1:2001"
locality = "region-b"
[[services.endpoints]]
address = "127.0.0.1:3001"
locality = "region-a"
priority = 5
"#
    );
    let config = ProxyConfig::parse(&text, "test").unwrap();
    let routes = Routes::from_config(&config).unwrap();
    routes.by_host("ledger").unwrap().destination().clone()
}

fn port(pick: Pick) -> u16 {
    match pick {
        Pick::Endpoint(e) => e.address.port(),
        Pick::NoEndpoints => 0,
        Pick::BreakerOpen => 1,
    }
}

fn eject(destination: &Destination, port: u16, now: Instant) {
    let endpoint = destination
        .endpoints
        .iter()
        .find(|e| e.address.port() == port)
        .unwrap();
    let one_failure = OutlierPolicy {
        consecutive_failures: 1,
        base_ejection_ms: 10_000,
        max_ejection_ms: 10_000,
        max_ejected_percent: 100,
    };
    endpoint.health.failed(&one_failure, now, 0, 100);
    assert!(endpoint.health.is_ejected(now));
}

#[test]
fn local_endpoints_are_used_until_all_are_ejected_then_the_next_priority() {
    let ledger = ledger("");
    let now = Instant::now();
    for _ in 0..50 {
        assert!([1001, 1002].contains(&port(pick(&ledger, &[], now))));
    }
    eject(&ledger, 1001, now);
    for _ in 0..20 {
        assert_eq!(port(pick(&ledger, &[], now)), 1002);
    }
    eject(&ledger, 1002, now);
    assert_eq!(port(pick(&ledger, &[], now)), 2001);
    eject(&ledger, 2001, now);
    assert_eq!(port(pick(&ledger, &[], now)), 3001);
    // Back when the ejection ends.
    let later = now + Duration::from_secs(11);
    assert!([1001, 1002].contains(&port(pick(&ledger, &[], later))));
}

#[test]
fn a_retry_goes_to_an_untried_endpoint_even_in_the_next_tier() {
    let ledger = ledger("");
    let now = Instant::now();
    let local: Vec<Arc<Endpoint>> = ledger.tiers()[0].clone();
    assert_eq!(
        port(pick(&ledger, &local[..1], now)),
        local[1].address.port()
    );
    assert_eq!(port(pick(&ledger, &local, now)), 2001);
    // With every endpoint tried, any may be tried again.
    let all = ledger.endpoints.clone();
    assert_ne!(port(pick(&ledger, &all, now)), 0);
}

#[test]
fn with_everything_ejected_traffic_still_flows() {
    let ledger = ledger("");
    let now = Instant::now();
    for p in [1001, 1002, 2001, 3001] {
        eject(&ledger, p, now);
    }
    assert_ne!(port(pick(&ledger, &[], now)), 0);
}

#[test]
fn the_cheaper_endpoint_wins_and_a_full_one_is_never_picked() {
    let ledger = ledger("[services.breaker]\nmax_concurrent = 2");
    let now = Instant::now();
    let slow = &ledger.tiers()[0][0];
    slow.load.observe(Duration::from_secs(1), now);
    for _ in 0..50 {
        assert_eq!(
            port(pick(&ledger, &[], now)),
            ledger.tiers()[0][1].address.port()
        );
    }
    let fast = &ledger.tiers()[0][1];
    let _a = fast.load.start();
    let _b = fast.load.start();
    for _ in 0..20 {
        assert_eq!(port(pick(&ledger, &[], now)), slow.address.port());
    }
    let _c = slow.load.start();
    let _d = slow.load.start();
    assert_eq!(
        port(pick(&ledger, &[], now)),
        1,
        "both local endpoints are full"
    );
}

#[test]
fn a_split_route_sends_traffic_by_weight() {
    let text = r#"
[identity]
service = "payments"
trust_anchors = "/ca.pem"
[[services]]
name = "ledger"
split = [{ service = "ledger", weight = 3 }, { service = "ledger-v2", weight = 1 }]
[[services]]
name = "ledger-v2"
"#;
    let config = ProxyConfig::parse(text, "test").unwrap();
    let routes = Routes::from_config(&config).unwrap();
    let route = routes.by_host("ledger").unwrap();
    let draws = 4000;
    let v2 = (0..draws)
        .filter(|_| &*route.destination().name == "ledger-v2")
        .count();
    // Expected 1000, standard deviation about 27: allow 5 of them.
    assert!(
        (865..=1135).contains(&v2),
        "{v2} of {draws} went to ledger-v2"
    );
}
