use std::fs::File;
use std::path::Path;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

const HOUR: u64 = 3_600_000_000_000;
/// 2026-11-21 10:00 UTC.
const T0: u64 = 1_795_255_200_000_000_000;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

/// `spans` spans of `service`, the i-th starting at `start + i ms`.
fn request(service: &str, start: u64, spans: u64, id: u64) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|i| Span {
            trace_id: (u128::from(id) << 64 | u128::from(i))
                .to_be_bytes()
                .to_vec(),
            span_id: (id * 1_000_000 + i + 1).to_be_bytes().to_vec(),
            name: "GET /".to_owned(),
            kind: 2,
            start_time_unix_nano: start + i * 1_000_000,
            end_time_unix_nano: start + i * 1_000_000 + 500_000,
            attributes: vec![text("server.address", "db"), text("custom.key", "v")],
            status: (i % 10 == 0).then(|| Status {
                code: 2,
                message: "boom".to_owned(),
            }),
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

fn config(dir: &Path) -> StoreConfig {
    StoreConfig {
        segment_max_seconds: 3600,
        retention_max_age_seconds: u64::MAX / 2_000_000_000,
        ..StoreConfig::new(dir.to_owned())
    }
}

/// Span ids in every segment under `dir`, sorted, and the error count.
fn stored(dir: &Path) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut errors = 0;
    for segment in segments::list(&dir.join("spans")).unwrap() {
        ids.extend(segments::span_ids(&segment.path).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&segment.path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let flags = column::<arrow_array::BooleanArray>(&batch.unwrap(), "error");
            errors += flags.iter().filter(|f| *f == Some(true)).count();
        }
    }
    ids.sort();
    (ids, errors)
}

#[test]
fn spans_land_in_hourly_segments_and_the_log_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recovery) = SpanStore::open(config(dir.path())).unwrap();
    assert_eq!(recovery, Recovery::default());
    store.append(&request("cart", T0, 100, 1)).unwrap();
    store.append(&request("cart", T0 + HOUR, 50, 2)).unwrap();
    store.flush().unwrap();

    let segments = store.segments().unwrap();
    assert_eq!(segments.len(), 2, "one per hour: {segments:?}");
    assert!(
        segments[0]
            .path
            .to_string_lossy()
            .contains("date=2026-11-21/hour=10")
    );
    assert!(segments[1].path.to_string_lossy().contains("hour=11"));
    let (ids, errors) = stored(dir.path());
    assert_eq!(ids.len(), 150);
    assert_eq!(errors, 10 + 5);
    let wal_files = wal::files(&dir.path().join("wal")).unwrap();
    assert_eq!(wal_files.len(), 1, "only the open log file is left");
    assert_eq!(std::fs::metadata(&wal_files[0].1).unwrap().len(), 0);
    assert_eq!(
        store.counters().spans_in_segments.load(Ordering::Relaxed),
        150
    );
    store.close();
}

/// The store's directory as a killed process left it: the log written,
/// no segment yet, and `torn` bytes of a half-written record at the end.
fn crashed_copy(torn: &[u8]) -> (tempfile::TempDir, Vec<String>) {
    let live = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(config(live.path())).unwrap();
    for id in 0..5 {
        store
            .append(&request("payments", T0 + id * 1_000, 20, id))
            .unwrap();
    }
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(live.path().join("wal")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::create_dir_all(copy.path().join("wal")).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(torn);
        std::fs::write(
            copy.path().join("wal").join(path.file_name().unwrap()),
            bytes,
        )
        .unwrap();
    }
    store.flush().unwrap();
    let (expected, _) = stored(live.path());
    store.close();
    (copy, expected)
}

#[test]
fn after_a_crash_every_logged_request_reaches_the_segments_once() {
    let (dir, expected) = crashed_copy(&[200, 1, 0, 0, 7, 7]);
    assert_eq!(expected.len(), 100);
    let (store, recovery) = SpanStore::open(config(dir.path())).unwrap();
    assert_eq!(recovery.requests, 5);
    assert_eq!(recovery.spans, 100);
    assert_eq!(recovery.torn_bytes, 6, "the torn record is dropped");
    store.close();
    let (ids, _) = stored(dir.path());
    assert_eq!(ids, expected);

    // Opening again finds nothing left to do, and nothing doubled.
    let (store, recovery) = SpanStore::open(config(dir.path())).unwrap();
    assert_eq!(recovery.requests, 0);
    store.close();
    assert_eq!(stored(dir.path()).0, expected);
}

#[test]
fn segments_of_a_flush_that_did_not_finish_are_replaced_not_doubled() {
    let (dir, expected) = crashed_copy(&[]);
    // A flush wrote one segment for the log's file, then the process died
    // before the checkpoint moved.
    let seq = wal::files(&dir.path().join("wal")).unwrap()[0].0;
    let rows = {
        let mut rows = rows::SpanRows::default();
        let reporter = rows::Reporter::from_resource(&[text("service.name", "payments")]);
        for span in &request("payments", T0, 20, 0).resource_spans[0].scope_spans[0].spans {
            rows.push(&reporter, span);
        }
        rows.finish()
    };
    let root = dir.path().join("spans");
    segments::write(&root, T0 / HOUR, seq, T0 + 1, &[rows]).unwrap();
    let (store, recovery) = SpanStore::open(config(dir.path())).unwrap();
    assert_eq!(recovery.requests, 5);
    store.close();
    assert_eq!(stored(dir.path()).0, expected, "no span twice");
}

#[test]
fn retention_drops_old_segments_and_then_the_oldest_over_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut config = config(dir.path());
    config.retention_max_age_seconds = 24 * 3600;
    let (store, _) = SpanStore::open(config.clone()).unwrap();
    store
        .append(&request("old", now - 48 * HOUR, 10, 1))
        .unwrap();
    store.append(&request("new", now - HOUR, 10, 2)).unwrap();
    store.flush().unwrap();
    store.close();
    let left = segments::list(&dir.path().join("spans")).unwrap();
    assert_eq!(left.len(), 1, "the two-day-old segment is gone: {left:?}");
    assert!(left[0].max_end_unix_nano > now - 2 * HOUR);

    config.retention_max_bytes = 1;
    let (store, _) = SpanStore::open(config).unwrap();
    store.append(&request("newer", now, 10, 3)).unwrap();
    store.flush().unwrap();
    assert_eq!(store.counters().segments_expired.load(Ordering::Relaxed), 2);
    store.close();
    assert!(
        segments::list(&dir.path().join("spans"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rows_of_a_failed_write_are_written_by_the_next_flush_once() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(config(dir.path())).unwrap();
    store.append(&request("cart", T0, 30, 1)).unwrap();
    // A file where the day's directory belongs: writing the segment fails.
    let day = segments::hour_dir(&dir.path().join("spans"), T0);
    let day = day.parent().unwrap();
    std::fs::create_dir_all(day.parent().unwrap()).unwrap();
    std::fs::write(day, b"in the way").unwrap();
    let error = store.flush().expect_err("the day is a file");
    assert!(error.to_string().contains("span store"), "{error}");
    assert_eq!(store.counters().segment_failures.load(Ordering::Relaxed), 1);
    store.append(&request("cart", T0, 20, 2)).unwrap();
    std::fs::remove_file(day).unwrap();
    store.flush().unwrap();
    let (ids, errors) = stored(dir.path());
    assert_eq!(ids.len(), 50, "every span once");
    assert_eq!(errors, 3 + 2);
    assert_eq!(
        store.counters().spans_in_segments.load(Ordering::Relaxed),
        50
    );
    store.close();
}

#[test]
fn a_memory_only_store_keeps_the_newest_spans_up_to_its_limit_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        memory_only_max_spans: Some(300),
        ..config(&dir.path().join("store"))
    };
    let (store, recovery) = SpanStore::open(config).unwrap();
    assert_eq!(recovery, Recovery::default());
    for id in 1..=4 {
        store
            .append(&request("cart", T0 + id * HOUR, 100, id))
            .unwrap();
        store.flush().unwrap();
    }
    let kept: Vec<_> = store
        .spans_in_memory()
        .iter()
        .flat_map(|batch| {
            let ids = column::<arrow_array::StringArray>(batch, "span_id");
            ids.iter().flatten().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(kept.len(), 300, "the oldest request's spans were dropped");
    assert_eq!(kept[0], hex::encode((2 * 1_000_000 + 1u64).to_be_bytes()));
    let counters = store.counters();
    assert_eq!(counters.spans_in_memory.load(Ordering::Relaxed), 400);
    assert_eq!(
        counters.spans_dropped_from_memory.load(Ordering::Relaxed),
        100
    );
    assert!(store.segments().unwrap().is_empty());
    store.close();
    assert!(!dir.path().join("store").exists(), "nothing on disk");
}

#[test]
fn attributes_without_a_column_of_their_own_are_kept_in_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(config(dir.path())).unwrap();
    store.append(&request("cart", T0, 1, 9)).unwrap();
    store.flush().unwrap();
    let segment = &store.segments().unwrap()[0];
    let batch = ParquetRecordBatchReaderBuilder::try_new(File::open(&segment.path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.schema(), *rows::SCHEMA);
    assert_eq!(
        column::<arrow_array::StringArray>(&batch, "peer").value(0),
        "db"
    );
    let map = batch.column_by_name("attributes").unwrap();
    let map = map
        .as_any()
        .downcast_ref::<arrow_array::MapArray>()
        .unwrap();
    let keys = map
        .keys()
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(keys.iter().flatten().collect::<Vec<_>>(), ["custom.key"]);
    store.close();
}

#[test]
fn a_segment_of_many_batches_holds_every_span_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SpanStore::open(config(dir.path())).unwrap();
    let spans = 2 * span_chunks::CHUNK_ROWS as u64 + 7;
    let request = request("cart", T0, spans, 4);
    let encoded = request.encode_to_vec();
    store.append_encoded(&request, &encoded).unwrap();
    store.flush().unwrap();
    let segments = store.segments().unwrap();
    assert_eq!(segments.len(), 1);
    let ids = segments::span_ids(&segments[0].path).unwrap();
    let expected: Vec<String> = request.resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .map(|s| hex::encode(&s.span_id))
        .collect();
    assert_eq!(ids, expected);
    store.close();
}

#[test]
fn a_store_that_is_behind_refuses_before_taking_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.max_waiting_spans = 0;
    let (store, _) = SpanStore::open(config).unwrap();
    assert!(matches!(
        store.check_room(),
        Err(StoreError::Unavailable("behind"))
    ));
    assert!(store.append(&request("cart", T0, 3, 1)).is_err());
    assert_eq!(store.counters().requests_refused.load(Ordering::Relaxed), 2);
    assert_eq!(store.counters().requests_logged.load(Ordering::Relaxed), 0);
    store.flush().unwrap();
    assert!(store.segments().unwrap().is_empty());
    store.close();
}

fn column<T: arrow_array::Array + Clone + 'static>(
    batch: &arrow_array::RecordBatch,
    name: &str,
) -> T {
    batch
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
        .clone()
}

#[test]
fn promoted_attributes_fill_their_columns_and_typed_values_become_text() {
    use arrow_array::{Array, Int64Array, MapArray, StringArray};
    let int = |key: &str, i| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(i)),
        }),
        ..KeyValue::default()
    };
    let mut request = request("cart", T0, 2, 5);
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans[0].attributes = vec![
        KeyValue {
            key: "peer.service".to_owned(),
            value: None,
            ..KeyValue::default()
        },
        text("server.address", "db"),
        int("http.response.status_code", 503),
        text("rpc.grpc.status_code", "14"),
        text("error.type", "timeout"),
        int("retries", 2),
        KeyValue {
            key: "cached".to_owned(),
            value: Some(AnyValue {
                value: Some(Value::BoolValue(true)),
            }),
            ..KeyValue::default()
        },
    ];
    spans[1].attributes = vec![
        text("server.address", "db"),
        text("peer.service", "ledger"),
        text("peer.service", "second"),
    ];
    let mut rows = rows::SpanRows::default();
    let reporter = rows::Reporter::from_resource(&[text("service.name", "cart")]);
    for span in spans.iter() {
        rows.push(&reporter, span);
    }
    let batch = rows.finish();
    let text_column = |name: &str| column::<StringArray>(&batch, name);
    let int_column = |name: &str| column::<Int64Array>(&batch, name);
    // peer.service without a value falls back to server.address; the
    // first peer.service with one wins.
    let peer = text_column("peer");
    assert_eq!((peer.value(0), peer.value(1)), ("db", "ledger"));
    assert_eq!(int_column("http_status").value(0), 503);
    assert!(int_column("http_status").is_null(1));
    assert_eq!(int_column("grpc_status").value(0), 14);
    assert_eq!(text_column("error_type").value(0), "timeout");
    assert!(text_column("error_type").is_null(1));
    let map = batch.column_by_name("attributes").unwrap();
    let map = map.as_any().downcast_ref::<MapArray>().unwrap();
    let entries = |row: usize| {
        let entry = map.value(row);
        let keys = entry
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let values = entry
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        keys.iter()
            .zip(values.iter())
            .map(|(k, v)| (k.unwrap().to_owned(), v.map(str::to_owned)))
            .collect::<Vec<_>>()
    };
    let owned = |k: &str, v: Option<&str>| (k.to_owned(), v.map(str::to_owned));
    assert_eq!(
        entries(0),
        [
            owned("peer.service", None),
            owned("retries", Some("2")),
            owned("cached", Some("true")),
        ]
    );
    assert_eq!(
        entries(1),
        [
            owned("peer.service", Some("ledger")),
            owned("peer.service", Some("second")),
        ]
    );
}
