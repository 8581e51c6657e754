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
