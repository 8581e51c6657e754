use meshtwin_datasets::dataset::{CaseSpec, Encoding, WriteOptions, generate};
use meshtwin_datasets::sim::{Fault, FaultKind, SimOptions};
use polars::prelude::*;

use super::*;

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(File::open(path).unwrap())
        .finish()
        .unwrap()
}

#[test]
fn every_span_point_and_label_lands_in_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let spec = CaseSpec {
        topology: "sock-shop".to_owned(),
        duration_s: 30.0,
        options: SimOptions {
            seed: 2,
            faults: vec![Fault {
                kind: FaultKind::ErrorReturns { share: 0.5 },
                service: "carts".to_owned(),
                instance: 0,
                region: None,
                start_s: 10.0,
                duration_s: 10.0,
            }],
            ..SimOptions::default()
        },
    };
    let write = WriteOptions {
        encoding: Encoding::Json,
        gzip: true,
    };
    let (manifest, _) = generate(&spec, dir.path(), write, &mut |_| {}).unwrap();
    let out = dir.path().join("tables");
    let mut calls = 0;
    let written = convert(dir.path(), &out, &mut |_| calls += 1).unwrap();
    assert_eq!(
        calls as u64,
        manifest.trace_requests + manifest.metric_requests
    );
    assert_eq!(written.spans, manifest.spans);
    assert_eq!(written.metric_points, manifest.metric_points);
    assert!(!out.join("spans.parquet.partial").exists());

    let spans = read(&out.join("spans.parquet"));
    assert_eq!(spans.height() as u64, manifest.spans);
    let errors = spans.clone().failed_server_spans("carts").unwrap();
    assert!(errors > 0, "the injected errors are in the table");
    let metrics = read(&out.join("metrics.parquet"));
    assert_eq!(metrics.height() as u64, manifest.metric_points);
    let labels = read(&out.join("labels.parquet"));
    assert_eq!(labels.height(), 1);
    let service = labels.column("service").unwrap().str().unwrap().get(0);
    assert_eq!(service, Some("carts"));
}

/// Failed SERVER spans of `service` (the lazy API is not compiled in).
trait CountErrors {
    fn failed_server_spans(self, service: &str) -> PolarsResult<usize>;
}

impl CountErrors for DataFrame {
    fn failed_server_spans(self, service: &str) -> PolarsResult<usize> {
        let services = self.column("service")?.str()?.clone();
        let kinds = self.column("kind")?.str()?.clone();
        let errors = self.column("error")?.bool()?.clone();
        Ok((0..self.height())
            .filter(|&i| {
                services.get(i) == Some(service)
                    && kinds.get(i) == Some("server")
                    && errors.get(i) == Some(true)
            })
            .count())
    }
}

#[test]
fn a_directory_that_is_not_a_dataset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let error = convert(dir.path(), dir.path(), &mut |_| {}).unwrap_err();
    assert!(error.to_string().contains("no manifest.json"), "{error}");
}

#[test]
fn a_case_without_faults_still_gets_an_empty_labels_table() {
    let dir = tempfile::tempdir().unwrap();
    let spec = CaseSpec {
        topology: "online-boutique".to_owned(),
        duration_s: 5.0,
        options: SimOptions::default(),
    };
    generate(&spec, dir.path(), WriteOptions::default(), &mut |_| {}).unwrap();
    let written = convert(dir.path(), dir.path(), &mut |_| {}).unwrap();
    assert_eq!(written.labels, 0);
    let labels = read(&dir.path().join("labels.parquet"));
    assert_eq!(labels.height(), 0);
    assert!(labels.column("fault").is_ok(), "the schema is there");
}
