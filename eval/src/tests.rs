//! The baselines on clear-cut cases: a strong fault on one service must
//! put that service at or near the top, the same way every run.

use meshtwin_datasets::dataset::{CaseSpec, WriteOptions, generate};
use meshtwin_datasets::sim::{Fault, FaultKind, SimOptions};

use crate::baselines;
use crate::case_data::CaseData;

fn case(kind: FaultKind, service: &str) -> CaseData {
    let dir = tempfile::tempdir().unwrap();
    let spec = CaseSpec {
        topology: "online-boutique".to_owned(),
        duration_s: 120.0,
        options: SimOptions {
            seed: 5,
            faults: vec![Fault {
                kind,
                service: service.to_owned(),
                instance: 0,
                region: None,
                start_s: 70.0,
                duration_s: 40.0,
            }],
            ..SimOptions::default()
        },
    };
    generate(&spec, dir.path(), WriteOptions::default(), &mut |_| {}).unwrap();
    CaseData::load(dir.path()).unwrap()
}

/// Each method's position (1-based) of `truth`.
fn positions(data: &CaseData, truth: &str) -> Vec<(&'static str, usize)> {
    let window = crate::window(data).unwrap();
    crate::ours::all()
        .into_iter()
        .chain(baselines::all())
        .map(|ranker| {
            let ranking = ranker.rank(data, &window);
            assert_eq!(
                ranking,
                ranker.rank(data, &window),
                "{} is deterministic",
                ranker.name()
            );
            assert_eq!(
                ranking.len(),
                data.candidates().len(),
                "every candidate ranked"
            );
            let at = ranking
                .iter()
                .position(|(n, _)| data.names[*n as usize] == truth)
                .expect("the root cause is a candidate");
            (ranker.name(), at + 1)
        })
        .collect()
}

#[test]
fn injected_errors_on_a_leaf_put_it_first_for_the_error_driven_methods() {
    let data = case(FaultKind::ErrorReturns { share: 0.8 }, "productcatalog");
    let at = positions(&data, "productcatalog");
    for (method, position) in &at {
        match *method {
            // Without traces the errors show in every caller as well.
            "random" | "meshtwin (metrics only)" => {}
            "TraceRCA" | "BARO" | "meshtwin" | "meshtwin (traces only)" => {
                assert_eq!(*position, 1, "{at:?}")
            }
            _ => assert!(*position <= 3, "{at:?}"),
        }
    }
}

#[test]
fn a_crashed_service_is_found_by_the_trace_methods() {
    let data = case(FaultKind::InstanceCrash, "currency");
    let at = positions(&data, "currency");
    let of = |m: &str| at.iter().find(|(n, _)| *n == m).unwrap().1;
    assert!(of("TraceRCA") <= 2, "{at:?}");
    assert_eq!(of("meshtwin"), 1, "{at:?}");
    assert!(of("MicroRank") <= 3, "{at:?}");
}

#[test]
fn the_candidates_are_the_services_that_do_work() {
    let data = case(FaultKind::CpuHog { factor: 4.0 }, "cart");
    let names: Vec<&str> = data
        .candidates()
        .into_iter()
        .map(|n| data.names[n as usize].as_str())
        .collect();
    assert!(
        names.contains(&"redis-cart"),
        "the datastore, named by its callers"
    );
    assert!(names.contains(&"frontend"));
    assert!(!names.contains(&"loadgenerator"), "the client does no work");
    assert!(
        data.metrics
            .iter()
            .any(|m| data.names[m.metric as usize] == "container.cpu.utilization")
    );
}

#[test]
fn the_twin_builds_the_graph_the_spans_describe() {
    let dir = tempfile::tempdir().unwrap();
    let spec = CaseSpec {
        topology: "sock-shop".to_owned(),
        duration_s: 60.0,
        options: SimOptions {
            seed: 4,
            faults: vec![Fault {
                kind: FaultKind::ErrorReturns { share: 0.5 },
                service: "carts".to_owned(),
                instance: 0,
                region: None,
                start_s: 20.0,
                duration_s: 20.0,
            }],
            ..SimOptions::default()
        },
    };
    generate(&spec, dir.path(), WriteOptions::default(), &mut |_| {}).unwrap();
    let data = CaseData::load(dir.path()).unwrap();
    let check = crate::twin_check::check("sock-shop", dir.path(), &data).unwrap();
    assert!(check.expected_edges > 10, "{check:?}");
    assert!(check.holds(), "{check:#?}");
}

/// End to end: a five-minute Online Boutique case with 60 % of cart's
/// calls failing from 180 s is detected by an incident holding cart, and
/// nothing is flagged before it.
#[test]
fn a_fault_is_detected_end_to_end_by_an_incident_holding_its_service() {
    use meshtwin_datasets::suite::{Case, CaseKind, GeneratedCase};
    use meshtwin_twin::TwinConfig;

    let dir = tempfile::tempdir().unwrap();
    let spec = CaseSpec {
        topology: "online-boutique".to_owned(),
        duration_s: 300.0,
        options: SimOptions {
            seed: 4,
            faults: vec![Fault {
                kind: FaultKind::ErrorReturns { share: 0.6 },
                service: "cart".to_owned(),
                instance: 0,
                region: None,
                start_s: 180.0,
                duration_s: 90.0,
            }],
            ..SimOptions::default()
        },
    };
    generate(&spec, dir.path(), WriteOptions::default(), &mut |_| {}).unwrap();
    let case = GeneratedCase {
        case: Case {
            name: "online-boutique.error_returns.s4".to_owned(),
            kind: CaseKind::Fault,
            topology: spec.topology.clone(),
            fault: "error_returns".to_owned(),
            spec: spec.clone(),
        },
        dir: dir.path().to_owned(),
        manifest: meshtwin_datasets::dataset::read_manifest(dir.path()).unwrap(),
        cached: false,
    };
    let config = TwinConfig::default();
    let detected = crate::detection::detect(&case, &config).unwrap();
    assert_eq!(detected.faults.len(), 1);
    let delay = detected.faults[0].delay_s.expect("detected");
    assert!((0.0..=40.0).contains(&delay), "{delay} s");
    assert_eq!(detected.false_incidents, 0, "{:?}", detected.incidents);
    assert_eq!(detected.fault_free_s, 60.0, "from the warm-up to the fault");
    let summary = crate::detection::summarise(&config, vec![detected]);
    assert_eq!((summary.faults, summary.detected), (1, 1));
    assert!(
        summary.markdown().contains("| 1 | 1 | 1.00 |"),
        "{}",
        summary.markdown()
    );
}
