use super::*;
use crate::rule::Mode;

const EXAMPLE: &str = include_str!("../../../failover-rules.example.toml");

#[test]
fn the_example_file_is_valid() {
    let set = RuleSet::from_toml(EXAMPLE, "example").unwrap();
    assert_eq!(set.limits.max_services_at_once, 1);
    let rule = set.rule("payments-region-a").unwrap();
    assert_eq!(rule.mode, Mode::DryRun);
    assert_eq!(rule.when.above, Some(0.2));
    assert_eq!(rule.shift_traffic.as_ref().unwrap().to_locality, "region-b");
}

#[test]
fn a_rule_without_a_mode_is_a_dry_run() {
    let text = EXAMPLE.replace("mode = \"dry_run\"\n", "");
    let set = RuleSet::from_toml(&text, "f").unwrap();
    assert_eq!(set.rules[0].mode, Mode::DryRun);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = r#"
color = "blue"
[limits]
max_services_at_once = 0
[[rules]]
name = "Bad Name"
mode = "sometimes"
service = "payments"
locality = "region-a"
when = { signal = "error_ratio", above = 0.2 }
recover = { signal = "error_ratio", below = 0.01, for_s = 30 }
[[rules]]
name = "two"
service = ""
locality = "region-a"
when = { signal = "error_ratio", above = 1.5, below = 0.1 }
recover = { signal = "error_ratio", below = 0.5 }
shift_traffic = { to_locality = "region-a" }
webhooks = [{ url = "ftp://x", secret_env = "", max_attempts = 0 }]
exec = [{ argv = [] }]
max_traffic_share = 0.0
max_actions_per_hour = 0
override_ttl_s = 1
expires = "tomorrow"
[[rules]]
name = "three"
service = "ledger"
locality = "region-a"
when = { signal = "incident", above = 1.0 }
recover = { signal = "incident", active = false, for_s = 10 }
webhooks = [{ url = "https://127.0.0.1:9/", secret_env = "S" }]
[[rules]]
name = "three"
service = "ledger"
locality = "region-b"
when = { signal = "p99_ms", above = 500.0, for_s = 10 }
recover = { signal = "p99_ms", below = 800.0, for_s = 10 }
exec = [{ argv = ["true"] }]
"#;
    let problems = RuleSet::from_toml(text, "rules.toml").unwrap_err().0;
    let expected = [
        "rules.toml: unknown key `color`",
        "rules.toml: rules[0]: unknown variant `sometimes`",
        "limits.max_services_at_once must be at least 1",
        "rules[1] `two`: service is required",
        "rules[1] `two`: when: give exactly one of above and below",
        "rules[1] `two`: recover.for_s must be at least 1",
        "rules[1] `two`: shift_traffic.to_locality is the rule's own locality",
        "rules[1] `two`: webhooks[0].url must start with http://",
        "rules[2] `three`: webhooks[0].url: https:// is not supported yet",
        "rules[1] `two`: webhooks[0].secret_env is required",
        "rules[1] `two`: webhooks[0].max_attempts must be 1 to 10",
        "rules[1] `two`: exec[0].argv must name a program",
        "rules[1] `two`: max_actions_per_hour must be at least 1",
        "rules[1] `two`: max_traffic_share must be above 0",
        "rules[1] `two`: override_ttl_s must be 10 to 86400",
        "rules[1] `two`: expires `tomorrow` is not an RFC 3339 time",
        "rules[2] `three`: when: incident is a flag",
        "rules[2] `three`: when: incident needs `active = true`",
        "rules[3] `three`: recover: p99_ms below 800 overlaps the failure (p99_ms above 500)",
        "rules[3] `three`: another rule has the same name",
    ];
    let all = problems.join("\n");
    for want in expected {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert_eq!(problems.len(), expected.len(), "{all}");
}

#[test]
fn a_rule_from_the_api_is_checked_the_same_way() {
    let rule: Rule = serde_json::from_value(serde_json::json!({
        "name": "api-rule",
        "service": "payments",
        "locality": "region-a",
        "when": { "signal": "anomaly", "active": true },
        "recover": { "signal": "anomaly", "active": true, "for_s": 60 },
        "shift_traffic": { "to_locality": "region-b" }
    }))
    .unwrap();
    let problems = rule_problems(&rule);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("is the failure condition itself"));
}

#[test]
fn the_known_keys_are_every_field_of_a_rule() {
    let mut rule = RuleSet::from_toml(EXAMPLE, "example")
        .unwrap()
        .rules
        .remove(0);
    rule.expires = Some("2030-01-01T00:00:00Z".to_owned());
    rule.webhooks = vec![
        serde_json::from_value(serde_json::json!({"url": "http://x", "secret_env": "S"})).unwrap(),
    ];
    rule.exec = vec![serde_json::from_value(serde_json::json!({"argv": ["true"]})).unwrap()];
    let serde_json::Value::Object(fields) = serde_json::to_value(&rule).unwrap() else {
        panic!()
    };
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    let mut known = RULE_KEYS.to_vec();
    keys.sort_unstable();
    known.sort_unstable();
    assert_eq!(keys, known);
}

#[test]
fn a_misspelt_key_is_reported_beside_the_rule_s_other_problems() {
    let text = EXAMPLE.replace("mode = \"dry_run\"", "mode = \"yolo\"\ncooldown = 3");
    let problems = RuleSet::from_toml(&text, "f").unwrap_err().0;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("rules[0]: unknown key `cooldown`"));
    assert!(problems[1].contains("unknown variant `yolo`"));
}
