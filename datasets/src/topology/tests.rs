use super::*;

#[test]
fn every_bundled_topology_is_valid() {
    for name in library::names() {
        let topology = library::bundled(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(topology.name, name);
    }
}

#[test]
fn bundled_topologies_have_their_applications_sizes() {
    let count = |name: &str, backend: bool| {
        library::bundled(name)
            .unwrap()
            .services
            .iter()
            .filter(|s| s.kind.is_backend() == backend)
            .count()
    };
    assert_eq!(
        count("online-boutique", false) + count("online-boutique", true),
        12
    );
    assert_eq!(count("sock-shop", false), 9);
    assert_eq!(count("train-ticket", false), 43);
    assert_eq!(count("train-ticket", true), 24);
    assert_eq!(count("social-network", false), 13);
    assert_eq!(count("hotel-reservation", false), 11);
    assert_eq!(count("bank", false), 13);
}

#[test]
fn in_the_bank_only_reporting_calls_customer_analytics() {
    let bank = library::bundled("bank").unwrap();
    let callers: Vec<&str> = bank
        .calls
        .iter()
        .filter(|c| c.to == "customer-analytics")
        .map(|c| c.from.as_str())
        .collect();
    assert_eq!(callers, ["reporting"]);
    assert!(bank.calls_from("payments").any(|c| c.to == "ledger"));
    assert_eq!(bank.regions.len(), 2);
}

#[test]
fn every_problem_is_reported() {
    let text = r#"
        name = "t"
        namespace = "n"
        regions = ["r"]
        entry = "nowhere"
        [[services]]
        name = "a"
        instances = 0
        regions = ["elsewhere"]
        [[calls]]
        from = "a"
        to = "b"
        operation = "x"
        probability = 2.0
        within = "never"
        mode = "async"
    "#;
    let err = Topology::from_toml(text).unwrap_err();
    let problems = err.0.join("\n");
    for expected in [
        "entry \"nowhere\" is not a service",
        "instances, concurrency and cpus must be at least 1",
        "region \"elsewhere\" is not in the topology's regions",
        "\"b\" is not a service",
        "probability must be in [0, 1]",
        "an async call needs via",
        "within \"never\" is not an operation a serves",
    ] {
        assert!(
            problems.contains(expected),
            "missing {expected:?} in:\n{problems}"
        );
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let err = Topology::from_toml("name = \"t\"\nflavour = 1\n").unwrap_err();
    assert!(err.to_string().contains("flavour"), "{err}");
}
