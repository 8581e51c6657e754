use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn dev() -> Vec<Case> {
    SuiteConfig::load("dev").unwrap().cases().unwrap()
}

#[test]
fn the_dev_suite_has_five_topologies_ten_fault_types_three_seeds_and_fault_free_hours() {
    let cases = dev();
    let names: BTreeSet<_> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    let mut seeds_per_topology_and_fault: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for case in cases.iter().filter(|c| c.kind == CaseKind::Fault) {
        *seeds_per_topology_and_fault
            .entry((&case.topology, &case.fault))
            .or_default() += 1;
    }
    let mut topologies_per_fault: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, fault), seeds) in &seeds_per_topology_and_fault {
        assert_eq!(*seeds, 3);
        *topologies_per_fault.entry(fault).or_default() += 1;
    }
    let everywhere = topologies_per_fault.values().filter(|&&n| n >= 5).count();
    assert!(everywhere >= 10, "{topologies_per_fault:?}");
    assert_eq!(topologies_per_fault["region_outage"], 1, "bank only");

    let fault_free: Vec<_> = cases
        .iter()
        .filter(|c| c.kind == CaseKind::FaultFree)
        .collect();
    assert_eq!(fault_free.len(), 6);
    assert!(fault_free.iter().all(|c| c.spec.duration_s >= 3600.0));
    assert!(fault_free.iter().all(|c| c.spec.options.faults.is_empty()));
    let doubles = cases.iter().filter(|c| c.kind == CaseKind::DoubleFault);
    for case in doubles {
        let faults = &case.spec.options.faults;
        assert_eq!(faults.len(), 2, "{}", case.name);
        assert_ne!(faults[0].service, faults[1].service);
        assert_eq!(faults[0].start_s, faults[1].start_s, "simultaneous");
    }
    let controls = cases
        .iter()
        .filter(|c| c.kind == CaseKind::NegativeControl)
        .count();
    assert_eq!(controls, 6 * 3 * 2);
}

#[test]
fn targets_are_drawn_from_what_the_traffic_reaches() {
    for case in dev() {
        let topology = crate::topology::library::bundled(&case.topology).unwrap();
        let problems = case.spec.options.problems(&topology);
        assert!(problems.is_empty(), "{}: {problems:?}", case.name);
    }
    for case in dev().iter().filter(|c| c.kind == CaseKind::Fault) {
        let topology = crate::topology::library::bundled(&case.topology).unwrap();
        let fault = &case.spec.options.faults[0];
        let target = topology.service(&fault.service).expect("a real service");
        match case.fault.as_str() {
            "slow_disk" => assert!(target.kind.is_backend(), "{}", case.name),
            _ => {
                assert!(!target.kind.is_backend(), "{}", case.name);
                assert_ne!(fault.service, topology.entry, "{}", case.name);
            }
        }
        if let crate::sim::FaultKind::MissingCall { to } = &fault.kind {
            let calls = topology.calls_from(&fault.service);
            assert!(calls.into_iter().any(|c| &c.to == to), "{}", case.name);
        }
    }
}

#[test]
fn expansion_is_deterministic_and_the_seed_moves_the_targets() {
    assert_eq!(dev(), dev());
    let services = |seed: u64| -> Vec<String> {
        dev()
            .into_iter()
            .filter(|c| c.kind == CaseKind::Fault && c.spec.options.seed == seed)
            .map(|c| c.spec.options.faults[0].service.clone())
            .collect()
    };
    let (one, two) = (services(1), services(2));
    let moved = one.iter().zip(&two).filter(|(a, b)| a != b).count();
    assert!(moved > one.len() / 3, "{moved} of {} moved", one.len());
}

#[test]
fn the_smoke_suite_is_ten_cases() {
    let cases = SuiteConfig::load("smoke").unwrap().cases().unwrap();
    assert_eq!(cases.len(), 10);
    assert!(cases.iter().any(|c| c.kind == CaseKind::FaultFree));
    assert!(cases.iter().any(|c| c.kind == CaseKind::NegativeControl));
}

#[test]
fn a_bad_config_reports_every_problem() {
    let mut config = SuiteConfig::load("smoke").unwrap();
    config.faults.push("cpu_hgo".to_owned());
    config.topologies.push("no-such".to_owned());
    config.fault_start_s = 100.0;
    let problems = config.cases().unwrap_err().0;
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("cpu_hgo"));

    let mut config = SuiteConfig::load("smoke").unwrap();
    config
        .parameters
        .insert("cpu_hog".to_owned(), toml::from_str("factr = 2.0").unwrap());
    let problems = config.cases().unwrap_err().0;
    assert!(problems.iter().any(|p| p.contains("factr")), "{problems:?}");
    assert!(SuiteConfig::from_toml("name = \"x\"\nsedes = [1]").is_err());
}

#[test]
fn sealing_changes_only_the_seeds_and_the_name() {
    let config = SuiteConfig::load("dev").unwrap();
    let sealed = seal(&config).unwrap();
    assert_eq!(sealed.seeds.len(), config.seeds.len());
    assert!(sealed.seeds.iter().all(|s| !config.seeds.contains(s)));
    assert_eq!(sealed.name, "dev-sealed");
    let back = SuiteConfig::from_toml(&toml::to_string(&sealed).unwrap()).unwrap();
    assert_eq!(back, sealed, "a sealed config round-trips through TOML");
}

#[test]
fn generated_cases_are_cached_until_their_case_changes() {
    let mut config = SuiteConfig::load("smoke").unwrap();
    config.duration_s = 20.0;
    config.fault_start_s = 5.0;
    config.fault_duration_s = 10.0;
    config.fault_free_s = 20.0;
    config.limit = Some(3);
    let cases = config.cases().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let done = std::sync::Mutex::new(Vec::new());
    let report = |p: SuiteProgress| done.lock().unwrap().push(p.done);
    let first = generate(&cases, cache.path(), 2, &report).unwrap();
    assert!(first.iter().all(|c| !c.cached));
    assert_eq!(done.lock().unwrap().len(), 3);
    let again = generate(&cases, cache.path(), 2, &report).unwrap();
    assert!(again.iter().all(|c| c.cached));
    assert_eq!(first[1].manifest, again[1].manifest);

    let mut changed = cases.clone();
    changed[0].spec.options.seed = 99;
    let third = generate(&changed, cache.path(), 1, &report).unwrap();
    assert!(!third[0].cached && third[1].cached);
}
