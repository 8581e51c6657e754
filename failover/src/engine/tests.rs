use super::*;
use crate::observed::ScopeSignals;

const RULES: &str = r#"
[[rules]]
name = "payments-a"
mode = "auto"
service = "payments"
locality = "region-a"
when = { signal = "error_ratio", above = 0.2, for_s = 5 }
recover = { signal = "error_ratio", below = 0.01, for_s = 30 }
shift_traffic = { to_locality = "region-b" }
cooldown_s = 60
override_ttl_s = 60
"#;

fn rules(text: &str) -> RuleSet {
    RuleSet::from_toml(text, "test").unwrap()
}

fn with_mode(mode: &str) -> RuleSet {
    rules(&RULES.replace("mode = \"auto\"", &format!("mode = \"{mode}\"")))
}

/// payments in two regions; region-a fails with `error_ratio`.
fn mesh(error_ratio: f64) -> Observed {
    let mut observed = Observed::default();
    let scope = |rate: f64, peak: f64, errors: f64| ScopeSignals {
        error_ratio: Some(errors),
        p99_ms: Some(20.0),
        rate_per_second: rate,
        peak_rate_per_second: peak,
        callers: [("checkout".to_owned(), rate)].into(),
        ..ScopeSignals::default()
    };
    observed.insert("payments", "region-a", scope(60.0, 70.0, error_ratio));
    observed.insert("payments", "region-b", scope(40.0, 120.0, 0.0));
    observed
}

/// Ticks once a second from `from` to `to` (seconds), gathering events.
fn run(engine: &mut Engine, from: u64, to: u64, observed: &Observed) -> Vec<(u64, Event)> {
    (from..to)
        .flat_map(|s| {
            engine
                .tick(s * 1000, observed)
                .into_iter()
                .map(move |e| (s, e))
        })
        .collect()
}

fn kinds(events: &[(u64, Event)]) -> Vec<(u64, &'static str)> {
    events.iter().map(|(s, e)| (*s, e.kind())).collect()
}

#[test]
fn auto_fails_over_after_the_hold_and_back_after_recovery() {
    let mut engine = Engine::new(with_mode("auto"));
    let failing = run(&mut engine, 0, 10, &mesh(1.0));
    assert_eq!(kinds(&failing), [(5, "decided"), (5, "act")]);
    let Event::Act {
        overrides: Some(moved),
        ..
    } = &failing[1].1
    else {
        panic!("an override")
    };
    assert_eq!(moved.service, "payments");
    assert_eq!(moved.expires_unix_ms, 65_000);
    assert_eq!(moved.locality_priorities["region-b"], 0);
    assert_eq!(moved.locality_priorities["region-a"], 1);
    assert_eq!(engine.overrides().len(), 1);
    // Renewed at half its lifetime while the failure lasts.
    let renewing = run(&mut engine, 10, 40, &mesh(1.0));
    assert_eq!(kinds(&renewing), [(35, "renew")]);
    // Recovery must hold 30 s; a blip restarts the count.
    let mut recovering = run(&mut engine, 40, 60, &mesh(0.0));
    recovering.extend(run(&mut engine, 60, 61, &mesh(0.5)));
    recovering.extend(run(&mut engine, 61, 100, &mesh(0.0)));
    assert_eq!(kinds(&recovering), [(65, "renew"), (91, "fail_back")]);
    assert!(engine.overrides().is_empty());
    // Cooldown: failing again at once does nothing for 60 s.
    let again = run(&mut engine, 100, 160, &mesh(1.0));
    assert_eq!(kinds(&again), [(151, "decided"), (151, "act")]);
}

#[test]
fn a_dry_run_records_the_prediction_and_moves_nothing() {
    let mut engine = Engine::new(with_mode("dry_run"));
    let events = run(&mut engine, 0, 10, &mesh(1.0));
    assert_eq!(kinds(&events), [(5, "decided")]);
    let Event::Decided {
        prediction,
        value,
        held_s,
        ..
    } = &events[0].1
    else {
        panic!()
    };
    assert_eq!((*value, *held_s), (Some(1.0), 5));
    assert!((prediction.moved_share - 0.6).abs() < 1e-9);
    assert_eq!(prediction.moved_rate_per_second, 60.0);
    assert_eq!(prediction.edges[0].caller, "checkout");
    // region-b has served 120/s; 40 + 60 fits.
    assert!(prediction.target_has_headroom);
    assert!(engine.overrides().is_empty());
    let back = run(&mut engine, 10, 50, &mesh(0.0));
    assert_eq!(kinds(&back), [(40, "fail_back")]);
    let Event::FailBack { dry_run, .. } = &back[0].1 else {
        panic!()
    };
    assert!(*dry_run);
}

#[test]
fn headroom_is_missing_when_the_target_never_served_that_much() {
    let mut observed = mesh(1.0);
    observed
        .scopes
        .get_mut(&("payments".into(), "region-b".into()))
        .unwrap()
        .peak_rate_per_second = 50.0;
    let mut engine = Engine::new(with_mode("dry_run"));
    let events = run(&mut engine, 0, 6, &observed);
    let Event::Decided { prediction, .. } = &events[0].1 else {
        panic!()
    };
    assert!(!prediction.target_has_headroom);
}

#[test]
fn approval_waits_for_an_operator() {
    let mut engine = Engine::new(with_mode("approval"));
    let events = run(&mut engine, 0, 20, &mesh(1.0));
    assert_eq!(kinds(&events), [(5, "decided")]);
    assert_eq!(engine.status()[0].phase, "awaiting_approval");
    assert!(
        engine
            .approve("payments-a", "payments-a@1", "alice", 20_000)
            .is_err()
    );
    assert!(
        engine
            .approve("nope", "payments-a@5000", "alice", 20_000)
            .is_err()
    );
    let approved = engine
        .approve("payments-a", "payments-a@5000", "alice", 20_000)
        .unwrap();
    let approved: Vec<&str> = approved.iter().map(Event::kind).collect();
    assert_eq!(approved, ["approved", "act"]);
    assert_eq!(engine.overrides()[0].expires_unix_ms, 80_000);
}

#[test]
fn an_approval_nobody_gave_is_withdrawn_on_recovery() {
    let mut engine = Engine::new(with_mode("approval"));
    run(&mut engine, 0, 6, &mesh(1.0));
    let events = run(&mut engine, 6, 40, &mesh(0.0));
    assert_eq!(kinds(&events), [(36, "withdrawn")]);
    assert!(
        engine
            .approve("payments-a", "payments-a@5000", "alice", 40_000)
            .is_err()
    );
}

#[test]
fn the_rate_limit_suppresses_once_per_episode() {
    let text = RULES.replace(
        "cooldown_s = 60",
        "cooldown_s = 0\nmax_actions_per_hour = 1",
    );
    let mut engine = Engine::new(rules(&text));
    run(&mut engine, 0, 6, &mesh(1.0));
    run(&mut engine, 6, 40, &mesh(0.0));
    let events = run(&mut engine, 40, 60, &mesh(1.0));
    assert_eq!(kinds(&events), [(45, "suppressed")]);
    let Event::Suppressed { reason, .. } = &events[0].1 else {
        panic!()
    };
    assert!(reason.starts_with("rate limit: 1 fail-overs"), "{reason}");
}

#[test]
fn the_blast_radius_limits_services_and_share() {
    let second = RULES
        .replace("payments-a", "ledger-a")
        .replace("service = \"payments\"", "service = \"ledger\"");
    let mut engine = Engine::new(rules(&format!("{RULES}{second}")));
    let mut observed = mesh(1.0);
    for locality in ["region-a", "region-b"] {
        let scope = observed.scope("payments", locality).unwrap().clone();
        observed.insert("ledger", locality, scope);
    }
    let events = run(&mut engine, 0, 6, &observed);
    assert_eq!(
        kinds(&events),
        [(5, "decided"), (5, "act"), (5, "suppressed")]
    );
    let Event::Suppressed { rule, reason } = &events[2].1 else {
        panic!()
    };
    assert_eq!(rule, "ledger-a");
    assert!(reason.contains("already moved (payments)"), "{reason}");

    let capped = RULES.replace("cooldown_s = 60", "max_traffic_share = 0.5");
    let mut engine = Engine::new(rules(&capped));
    let events = run(&mut engine, 0, 6, &mesh(1.0));
    let Event::Suppressed { reason, .. } = &events[0].1 else {
        panic!()
    };
    assert!(reason.contains("carries 60 %"), "{reason}");
}

#[test]
fn turning_a_rule_off_or_letting_it_expire_fails_back() {
    let mut engine = Engine::new(with_mode("auto"));
    run(&mut engine, 0, 6, &mesh(1.0));
    let events = engine.replace_rules(with_mode("off"));
    assert_eq!(
        events.iter().map(Event::kind).collect::<Vec<_>>(),
        ["fail_back"]
    );
    assert!(engine.overrides().is_empty());

    let expiring = RULES.replace("cooldown_s = 60", "expires = \"1970-01-01T00:00:30Z\"");
    let mut engine = Engine::new(rules(&expiring));
    let events = run(&mut engine, 0, 40, &mesh(1.0));
    assert_eq!(
        kinds(&events),
        [(5, "decided"), (5, "act"), (30, "fail_back")]
    );
}

#[test]
fn no_traffic_is_no_evidence() {
    let mut engine = Engine::new(with_mode("auto"));
    let mut observed = mesh(0.0);
    observed
        .scopes
        .get_mut(&("payments".into(), "region-a".into()))
        .unwrap()
        .error_ratio = None;
    assert!(run(&mut engine, 0, 60, &observed).is_empty());
    assert!(run(&mut engine, 60, 120, &Observed::default()).is_empty());
}
