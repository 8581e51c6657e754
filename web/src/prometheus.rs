//! Prometheus `GET /metrics`: the twin's edge series under the names Tempo
//! and the OTel `servicegraph` connector use, the twin's counters, and
//! every counter registered by the other stages.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use meshtwin_model::series::{EdgeSeries, LatencyHistogram, TwinCounters, TwinView};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::WebState;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The web stage's own counters.
#[derive(Debug, Default)]
pub struct WebMetrics {
    streams_open: Gauge,
    streams_lagged: Counter,
}

impl WebMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("meshtwin_web");
        sub.register(
            "streams_open",
            "Websocket clients connected to /api/v1/stream",
            self.streams_open.clone(),
        );
        sub.register(
            "streams_lagged",
            "Times a websocket client fell behind and was sent a fresh snapshot",
            self.streams_lagged.clone(),
        );
    }

    pub(crate) fn stream_opened(&self) {
        self.streams_open.inc();
    }

    pub(crate) fn stream_closed(&self) {
        self.streams_open.dec();
    }

    pub(crate) fn stream_lagged(&self) {
        self.streams_lagged.inc();
    }
}

/// Registers the twin's series and counters, read from its latest view at
/// every scrape.
pub fn register_twin_metrics(registry: &mut Registry, view: watch::Receiver<TwinView>) {
    registry.register_collector(Box::new(TwinCollector { view }));
}

#[derive(Debug)]
struct TwinCollector {
    view: watch::Receiver<TwinView>,
}

impl Collector for TwinCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let view = self.view.borrow().clone();
        encode_edges(&mut encoder, &view.series)?;
        encode_counters(&mut encoder, &view.counters)?;
        let sizes = [
            (
                "nodes",
                "Nodes in the service graph",
                view.snapshot.nodes.len(),
            ),
            (
                "edges",
                "Edges in the service graph",
                view.snapshot.edges.len(),
            ),
            (
                "pending_spans",
                "Spans waiting for their other half",
                view.counters.pending_spans as usize,
            ),
        ];
        for (name, help, value) in sizes {
            encode_twin_metric(&mut encoder, name, help, ConstGauge::new(value as i64))?;
        }
        Ok(())
    }
}

/// The servicegraph connector's labels, plus the namespaces as its
/// `client_<dimension>` / `server_<dimension>` labels.
fn labels(series: &EdgeSeries) -> [(&str, &str); 5] {
    [
        ("client", series.client.as_str()),
        ("server", series.server.as_str()),
        ("connection_type", series.connection_type.label()),
        ("client_service_namespace", series.client_namespace.as_str()),
        ("server_service_namespace", series.server_namespace.as_str()),
    ]
}

/// One per-edge metric family: its name, help, and how to read it.
struct EdgeFamily<Read> {
    name: &'static str,
    help: &'static str,
    read: Read,
}

type ReadCount = fn(&EdgeSeries) -> u64;
type ReadHistogram = fn(&EdgeSeries) -> &LatencyHistogram;

const EDGE_COUNTERS: [EdgeFamily<ReadCount>; 2] = [
    EdgeFamily {
        name: "traces_service_graph_request",
        help: "Requests between two nodes",
        read: |s| s.requests,
    },
    EdgeFamily {
        name: "traces_service_graph_request_failed",
        help: "Failed requests between two nodes",
        read: |s| s.failed,
    },
];

const EDGE_HISTOGRAMS: [EdgeFamily<ReadHistogram>; 2] = [
    EdgeFamily {
        name: "traces_service_graph_request_server_seconds",
        help: "Time for a request between two nodes as seen from the server",
        read: |s| &s.server_seconds,
    },
    EdgeFamily {
        name: "traces_service_graph_request_client_seconds",
        help: "Time for a request between two nodes as seen from the client",
        read: |s| &s.client_seconds,
    },
];

fn encode_edges(
    encoder: &mut DescriptorEncoder,
    series: &[EdgeSeries],
) -> Result<(), std::fmt::Error> {
    for counter in &EDGE_COUNTERS {
        let mut family =
            encoder.encode_descriptor(counter.name, counter.help, None, MetricType::Counter)?;
        for s in series {
            ConstCounter::new((counter.read)(s)).encode(family.encode_family(&labels(s))?)?;
        }
    }
    for histogram in &EDGE_HISTOGRAMS {
        let mut family = encoder.encode_descriptor(
            histogram.name,
            histogram.help,
            None,
            MetricType::Histogram,
        )?;
        // An edge with no observation from this side has no histogram.
        for s in series.iter().filter(|s| (histogram.read)(s).count() > 0) {
            let h = (histogram.read)(s);
            family
                .encode_family(&labels(s))?
                .encode_histogram::<NoLabelSet>(
                    h.sum_seconds(),
                    h.count(),
                    &h.cumulative_buckets(),
                    None,
                )?;
        }
    }
    Ok(())
}

fn encode_counters(
    encoder: &mut DescriptorEncoder,
    c: &TwinCounters,
) -> Result<(), std::fmt::Error> {
    let counters = [
        ("spans_ingested", "Spans the twin took in", c.spans_ingested),
        (
            "pairs_matched",
            "Client/producer spans matched with their server/consumer span",
            c.pairs_matched,
        ),
        (
            "pairs_internal_parent",
            "Server spans whose parent in another service is not a client span",
            c.pairs_internal_parent,
        ),
        (
            "virtual_edges",
            "Caller spans counted on an edge to a virtual node (database, broker, peer.service)",
            c.virtual_edges,
        ),
        (
            "unpaired_callers_expired",
            "Client/producer spans that expired unmatched with no hint of their callee",
            c.unpaired_callers_expired,
        ),
        (
            "unpaired_callees_expired",
            "Server/consumer spans whose parent never arrived",
            c.unpaired_callees_expired,
        ),
        (
            "pending_evicted",
            "Pending spans expired early because max_pending_spans was reached",
            c.pending_evicted,
        ),
        (
            "dropped_node_limit",
            "Spans dropped because max_nodes was reached",
            c.dropped_node_limit,
        ),
        (
            "stale_calls",
            "Calls dropped because a node expired while one of their halves was pending",
            c.stale_calls,
        ),
        (
            "dropped_edge_limit",
            "Calls dropped because max_edges was reached",
            c.dropped_edge_limit,
        ),
        (
            "late_spans",
            "Spans older than the five-minute window, counted in totals only",
            c.late_spans,
        ),
        (
            "future_spans",
            "Spans stamped after their arrival, taken as arriving then",
            c.future_spans,
        ),
        (
            "nodes_expired",
            "Nodes removed after idle_expiry_seconds without traffic",
            c.nodes_expired,
        ),
        (
            "edges_expired",
            "Edges removed after idle_expiry_seconds without traffic",
            c.edges_expired,
        ),
        (
            "anomalies",
            "Alarms raised by the detectors, one per signal of a node or edge per 10 s bucket",
            c.anomalies,
        ),
    ];
    for (name, help, value) in counters {
        encode_twin_metric(encoder, name, help, ConstCounter::new(value))?;
    }
    Ok(())
}

/// Encodes one unlabelled `meshtwin_twin_*` metric.
fn encode_twin_metric(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let name = format!("meshtwin_twin_{name}");
    let encoded = encoder.encode_descriptor(&name, help, None, metric.metric_type())?;
    metric.encode(encoded)
}

/// `GET /metrics`.
pub(crate) async fn render(State(state): State<WebState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}
