use std::path::Path;

use super::*;
use crate::sim::{Fault, FaultKind};

fn case(seconds: f64) -> CaseSpec {
    CaseSpec {
        topology: "online-boutique".to_owned(),
        duration_s: seconds,
        options: SimOptions {
            seed: 7,
            faults: vec![Fault {
                kind: FaultKind::ErrorReturns { share: 0.5 },
                service: "cart".to_owned(),
                instance: 0,
                region: None,
                start_s: 5.0,
                duration_s: 5.0,
            }],
            ..SimOptions::default()
        },
    }
}

fn write(dir: &Path, encoding: Encoding, gzip: bool) -> Manifest {
    let options = WriteOptions { encoding, gzip };
    let mut seconds = Vec::new();
    let (manifest, labels) = generate(&case(15.0), dir, options, &mut |s| seconds.push(s)).unwrap();
    assert_eq!(seconds.len(), 15, "progress after every simulated second");
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].service, "cart");
    manifest
}

fn read_all(dir: &Path) -> Vec<Batch> {
    DatasetReader::open(dir)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn protobuf_and_json_hold_the_same_requests_in_time_order() {
    let pb = tempfile::tempdir().unwrap();
    let json = tempfile::tempdir().unwrap();
    let manifest = write(pb.path(), Encoding::Protobuf, true);
    write(json.path(), Encoding::Json, false);
    assert!(pb.path().join("traces.pb.gz").exists());
    assert!(json.path().join("traces.jsonl").exists());

    let from_pb = read_all(pb.path());
    let from_json = read_all(json.path());
    assert_eq!(from_pb.len(), from_json.len());
    for (i, (a, b)) in from_pb.iter().zip(&from_json).enumerate() {
        if a != b {
            let (a, b) = (format!("{a:?}"), format!("{b:?}"));
            let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
            let context = |s: &str| s[at.saturating_sub(200)..(at + 100).min(s.len())].to_owned();
            panic!("request {i} differs:\n{}\n{}", context(&a), context(&b));
        }
    }
    assert_eq!(
        from_pb.len() as u64,
        manifest.trace_requests + manifest.metric_requests
    );
    let spans: usize = from_pb.iter().map(Batch::span_count).sum();
    assert_eq!(spans as u64, manifest.spans);
    let points: usize = from_pb.iter().map(Batch::point_count).sum();
    assert_eq!(points as u64, manifest.metric_points);
    assert!(manifest.metric_points > 0 && manifest.spans > 100);
    assert!(
        from_pb
            .windows(2)
            .all(|w| w[0].at_unix_nano <= w[1].at_unix_nano),
        "requests come out in time order"
    );
    assert!(
        from_pb
            .iter()
            .any(|b| matches!(b.payload, Payload::Metrics(_)))
    );
}

#[test]
fn the_same_case_gives_byte_identical_files() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write(a.path(), Encoding::Protobuf, false);
    write(b.path(), Encoding::Protobuf, false);
    for file in ["traces.pb", "metrics.pb", LABELS, MANIFEST] {
        let left = std::fs::read(a.path().join(file)).unwrap();
        let right = std::fs::read(b.path().join(file)).unwrap();
        assert!(left == right, "{file} differs between two runs");
    }
}

#[test]
fn a_truncated_protobuf_file_ends_with_an_error_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), Encoding::Protobuf, false);
    let path = manifest.traces_path(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();

    let results: Vec<_> = DatasetReader::open(dir.path()).unwrap().collect();
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1, "one error, then that file stops");
    assert!(errors[0].fatal);
    assert_eq!(errors[0].record, manifest.trace_requests);
    assert!(errors[0].to_string().contains("truncated"), "{}", errors[0]);
    let metrics = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Ok(Batch {
                    payload: Payload::Metrics(_),
                    ..
                })
            )
        })
        .count();
    assert_eq!(
        metrics as u64, manifest.metric_requests,
        "metrics still read"
    );
}

#[test]
fn a_bad_json_line_is_an_error_in_its_place_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), Encoding::Json, false);
    let path = manifest.traces_path(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{\"resourceSpans\": [ not json";
    std::fs::write(&path, lines.join("\n")).unwrap();

    let results: Vec<_> = DatasetReader::open(dir.path()).unwrap().collect();
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].record, 3);
    assert!(!errors[0].fatal);
    let traces = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Ok(Batch {
                    payload: Payload::Traces(_),
                    ..
                })
            )
        })
        .count();
    assert_eq!(traces as u64, manifest.trace_requests - 1);
}

#[test]
fn a_directory_without_a_manifest_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let error = DatasetReader::open(dir.path()).err().unwrap().to_string();
    assert!(error.contains("no manifest.json"), "{error}");
}

#[test]
fn a_bad_case_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = case(0.0);
    let error = generate(&bad, dir.path(), WriteOptions::default(), &mut |_| {});
    assert!(error.unwrap_err().to_string().contains("duration_s"));
    bad.duration_s = 5.0;
    bad.topology = "no-such-topology".to_owned();
    let error = generate(&bad, dir.path(), WriteOptions::default(), &mut |_| {});
    assert!(error.unwrap_err().to_string().contains("online-boutique"));
}

#[test]
fn shifting_time_moves_spans_events_and_points() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Encoding::Protobuf, false);
    for mut batch in read_all(dir.path()) {
        let before = batch.clone();
        batch.shift_time(-1_000_000_000);
        assert_eq!(batch.at_unix_nano, before.at_unix_nano - 1_000_000_000);
        if let (Payload::Traces(after), Payload::Traces(before)) = (&batch.payload, &before.payload)
        {
            let a = &after.resource_spans[0].scope_spans[0].spans[0];
            let b = &before.resource_spans[0].scope_spans[0].spans[0];
            assert_eq!(
                a.start_time_unix_nano,
                b.start_time_unix_nano - 1_000_000_000
            );
            assert_eq!(a.end_time_unix_nano, b.end_time_unix_nano - 1_000_000_000);
        }
    }
}

#[test]
fn every_problem_with_a_case_is_listed_before_anything_runs() {
    let mut bad = case(10.0);
    let fault = |kind, service: &str, region: Option<&str>, instance| Fault {
        kind,
        service: service.to_owned(),
        instance,
        region: region.map(str::to_owned),
        start_s: 2.0,
        duration_s: 5.0,
    };
    bad.options.faults = vec![
        fault(FaultKind::CpuHog { factor: 2.0 }, "crat", None, 0),
        fault(FaultKind::CpuHog { factor: 2.0 }, "cart", Some("mars-1"), 0),
        fault(FaultKind::InstanceCrash, "cart", None, 7),
        fault(
            FaultKind::MissingCall {
                to: "email".to_owned(),
            },
            "cart",
            None,
            0,
        ),
    ];
    bad.options.faults[0].start_s = 30.0;
    bad.options.uninstrumented = vec!["nobody".to_owned()];
    bad.options.sampling_ratio = 0.0;
    let dir = tempfile::tempdir().unwrap();
    let Err(DatasetError::Case(problems)) =
        generate(&bad, dir.path(), WriteOptions::default(), &mut |_| {})
    else {
        panic!("refused")
    };
    let expected = [
        "uninstrumented: no service \"nobody\"",
        "sampling_ratio",
        "faults[0] (cpu_hog): no service \"crat\"",
        "faults[1] (cpu_hog): cart does not run in region \"mars-1\"",
        "faults[2] (instance_crash): cart has 1 instance(s) per region; instance 7",
        "faults[3] (missing_call): cart makes no call to \"email\"",
        "faults[0] (cpu_hog) starts at 30 s, after the run ends at 10 s",
    ];
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    for (problem, expected) in problems.iter().zip(expected) {
        assert!(
            problem.contains(expected),
            "{problem:?} should say {expected:?}"
        );
    }
    assert!(!dir.path().join("traces.pb").exists(), "nothing written");
}
