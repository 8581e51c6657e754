use super::*;

const MINIMAL: &str = r#"
[identity]
service = "payments"
trust_anchors = "/etc/meshtwin/ca.pem"
"#;

#[test]
fn a_minimal_file_gets_working_defaults() {
    let config = ProxyConfig::parse(MINIMAL, "proxy.toml").unwrap();
    assert_eq!(
        config.spiffe_id().unwrap().to_string(),
        "spiffe://meshtwin.local/ns/default/sa/payments"
    );
    assert_eq!(config.outbound.listen, loopback(4140));
    assert!(config.telemetry.enabled);
    assert!(!config.inbound.permissive);
    assert_eq!(config.scheduling, Scheduling::Batch);
}

#[test]
fn scheduling_is_batch_or_normal() {
    let normal = format!("scheduling = \"normal\"\n{MINIMAL}");
    let config = ProxyConfig::parse(&normal, "proxy.toml").unwrap();
    assert_eq!(config.scheduling, Scheduling::Normal);
    let fifo = format!("scheduling = \"fifo\"\n{MINIMAL}");
    let problems = ProxyConfig::parse(&fifo, "proxy.toml").unwrap_err().0;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("scheduling") && p.contains("fifo")),
        "{problems:?}"
    );
}

#[test]
fn every_problem_is_reported_together() {
    let text = r#"
colour = "blue"
[identity]
service = "Payments"
[inbound]
app = "10.0.0.1:80"
listen = "not an address"
[telemetry]
collector = "nowhere"
queue_spans = 0
[[services]]
name = "ledger"
protocol = "tcp"
[[services]]
name = "ledger"
port = 9000
[[services]]
name = "ledger"
"#;
    let problems = ProxyConfig::parse(text, "proxy.toml").unwrap_err().0;
    let joined = problems.join("\n");
    for needle in ["`colour`", "inbound:"] {
        assert!(joined.contains(needle), "{needle} missing from:\n{joined}");
    }
    // Parse errors stop before the semantic checks; fix them and the rest
    // are listed together.
    let text = text
        .replace("colour = \"blue\"\n", "")
        .replace("listen = \"not an address\"\n", "");
    let problems = ProxyConfig::parse(&text, "proxy.toml").unwrap_err().0;
    let joined = problems.join("\n");
    for needle in [
        "identity: `Payments` has an invalid service name",
        "identity.trust_anchors: required",
        "telemetry.collector",
        "queue_spans",
        "inbound.app: 10.0.0.1:80 is not on loopback",
        "a tcp service needs a local `port`",
        "host `ledger` routes to two services",
    ] {
        assert!(joined.contains(needle), "{needle} missing from:\n{joined}");
    }
    assert!(problems.iter().all(|p| p.starts_with("proxy.toml: ")));
}

#[test]
fn the_example_file_is_valid() {
    let text = include_str!("../../../proxy.example.toml");
    let config = ProxyConfig::parse(text, "proxy.example.toml").unwrap();
    assert_eq!(config.services.len(), 2);
    assert_eq!(config.inbound.app, Some(loopback(8080)));
}

#[test]
fn every_policy_problem_is_reported_together() {
    let text = format!(
        "{MINIMAL}{}",
        r#"
[[services]]
name = "ledger"
split = [{ service = "nowhere", weight = 1 }]
[services.retry]
budget_percent = -1.0
on_status = [42]
on_grpc = [99]
[services.outlier]
base_ejection_ms = 0
max_ejected_percent = 150
[services.breaker]
max_concurrent = 0
[[services.faults]]
abort_percent = 120.0
abort_status = 7
"#
    );
    let problems = ProxyConfig::parse(&text, "proxy.toml").unwrap_err().0;
    for expected in [
        "retry.budget_percent",
        "retry.on_status 42",
        "retry.on_grpc 99",
        "outlier.base_ejection_ms",
        "outlier.max_ejected_percent",
        "breaker.max_concurrent",
        "faults[0].abort_percent",
        "faults[0].abort_status",
        "split target `nowhere`",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "missing {expected} in {problems:#?}"
        );
    }
}
