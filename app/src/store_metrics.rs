//! The span store's counters on `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use meshtwin_store::SpanStore;
use meshtwin_store::table::{TableAppender, TableCounters};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;

/// Registers the store's counters and those of the tables beside it.
pub(crate) fn register(
    registry: &mut Registry,
    store: Arc<SpanStore>,
    tables: Vec<(&'static str, Arc<TableAppender>)>,
) {
    registry.register_collector(Box::new(StoreCollector { store, tables }));
}

struct StoreCollector {
    store: Arc<SpanStore>,
    tables: Vec<(&'static str, Arc<TableAppender>)>,
}

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCollector")
    }
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = self.store.counters();
        let counters = [
            (
                "requests_logged",
                "Export requests the span store took (into its log when on disk)",
                &c.requests_logged,
            ),
            (
                "requests_refused",
                "Export requests the span store refused (behind or unable to write)",
                &c.requests_refused,
            ),
            (
                "spans_in_segments",
                "Spans written to Parquet segments",
                &c.spans_in_segments,
            ),
            (
                "spans_in_memory",
                "Spans taken into memory (memory-only store)",
                &c.spans_in_memory,
            ),
            (
                "spans_dropped_from_memory",
                "Spans dropped from memory to stay under memory_only_max_spans",
                &c.spans_dropped_from_memory,
            ),
            (
                "segments_written",
                "Parquet segments written",
                &c.segments_written,
            ),
            (
                "segment_failures",
                "Segment flushes that failed (the log keeps their spans)",
                &c.segment_failures,
            ),
            (
                "segments_expired",
                "Segments deleted by retention",
                &c.segments_expired,
            ),
            (
                "bytes_expired",
                "Bytes of segments deleted by retention",
                &c.bytes_expired,
            ),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value.load(Ordering::Relaxed));
            let name = format!("meshtwin_store_{name}");
            let descriptor = encoder.encode_descriptor(&name, help, None, metric.metric_type())?;
            metric.encode(descriptor)?;
        }
        self.encode_tables(&mut encoder)
    }
}

impl StoreCollector {
    fn encode_tables(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Read = fn(&TableCounters) -> &AtomicU64;
        let counters: [(&str, &str, Read); 5] = [
            (
                "rows_written",
                "Rows written to a table beside the spans",
                |c| &c.rows_written,
            ),
            (
                "rows_dropped",
                "Rows of a table dropped (queue full, or a file failed)",
                |c| &c.rows_dropped,
            ),
            ("files_written", "Parquet files written to a table", |c| {
                &c.files_written
            }),
            ("write_failures", "Table flushes that failed", |c| {
                &c.write_failures
            }),
            ("files_expired", "Table files deleted by retention", |c| {
                &c.files_expired
            }),
        ];
        for (name, help, read) in counters {
            let name = format!("meshtwin_store_table_{name}");
            let mut family = encoder.encode_descriptor(&name, help, None, MetricType::Counter)?;
            for (table, appender) in &self.tables {
                let metric = ConstCounter::new(read(appender.counters()).load(Ordering::Relaxed));
                metric.encode(family.encode_family(&[("table", *table)])?)?;
            }
        }
        Ok(())
    }
}
