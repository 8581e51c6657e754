//! The span store's counters on `/metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use meshtwin_store::SpanStore;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::Registry;

pub(crate) fn register(registry: &mut Registry, store: Arc<SpanStore>) {
    registry.register_collector(Box::new(StoreCollector { store }));
}

struct StoreCollector {
    store: Arc<SpanStore>,
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
                "Export requests written to the span store's log",
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
        Ok(())
    }
}
