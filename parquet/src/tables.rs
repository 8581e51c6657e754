//! OTLP requests → rows of the three tables, column by column.

use meshtwin_datasets::sim::GroundTruth;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use polars::prelude::*;

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::IntValue(i) => Some(*i),
            _ => None,
        }
    })
}

fn hex(bytes: &[u8]) -> Option<String> {
    (!bytes.is_empty()).then(|| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Who reported a record: the resource's service, instance, region, version.
#[derive(Default)]
struct Resource {
    service: Vec<Option<String>>,
    instance: Vec<Option<String>>,
    region: Vec<Option<String>>,
    version: Vec<Option<String>>,
}

impl Resource {
    fn push(&mut self, attributes: &[KeyValue]) {
        self.service.push(text(attributes, "service.name"));
        self.instance.push(text(attributes, "service.instance.id"));
        self.region.push(text(attributes, "cloud.region"));
        self.version.push(text(attributes, "service.version"));
    }

    fn columns(&mut self) -> Vec<Column> {
        vec![
            Column::new("service".into(), std::mem::take(&mut self.service)),
            Column::new("instance".into(), std::mem::take(&mut self.instance)),
            Column::new("region".into(), std::mem::take(&mut self.region)),
            Column::new("version".into(), std::mem::take(&mut self.version)),
        ]
    }
}

/// Rows of the `spans` table, until taken as a frame.
#[derive(Default)]
pub struct SpanRows {
    resource: Resource,
    trace_id: Vec<Option<String>>,
    span_id: Vec<Option<String>>,
    parent_span_id: Vec<Option<String>>,
    name: Vec<String>,
    kind: Vec<&'static str>,
    start_unix_nano: Vec<u64>,
    end_unix_nano: Vec<u64>,
    duration_ns: Vec<u64>,
    error: Vec<bool>,
    error_type: Vec<Option<String>>,
    peer: Vec<Option<String>>,
    resend_count: Vec<Option<i64>>,
    linked_trace_id: Vec<Option<String>>,
}

impl SpanRows {
    pub fn len(&self) -> usize {
        self.name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_empty()
    }

    pub fn push(&mut self, request: &ExportTraceServiceRequest) {
        for resource_spans in &request.resource_spans {
            let attributes = resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                self.resource.push(attributes);
                self.trace_id.push(hex(&span.trace_id));
                self.span_id.push(hex(&span.span_id));
                self.parent_span_id.push(hex(&span.parent_span_id));
                self.name.push(span.name.clone());
                self.kind.push(
                    match SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified) {
                        SpanKind::Server => "server",
                        SpanKind::Client => "client",
                        SpanKind::Producer => "producer",
                        SpanKind::Consumer => "consumer",
                        SpanKind::Internal => "internal",
                        SpanKind::Unspecified => "unspecified",
                    },
                );
                self.start_unix_nano.push(span.start_time_unix_nano);
                self.end_unix_nano.push(span.end_time_unix_nano);
                self.duration_ns.push(
                    span.end_time_unix_nano
                        .saturating_sub(span.start_time_unix_nano),
                );
                self.error.push(
                    span.status
                        .as_ref()
                        .is_some_and(|s| s.code == StatusCode::Error as i32),
                );
                self.error_type.push(text(&span.attributes, "error.type"));
                self.peer.push(text(&span.attributes, "server.address"));
                self.resend_count
                    .push(int(&span.attributes, "http.request.resend_count"));
                self.linked_trace_id
                    .push(span.links.first().and_then(|l| hex(&l.trace_id)));
            }
        }
    }

    /// The rows so far as a frame; the builder starts empty again.
    pub fn take(&mut self) -> PolarsResult<DataFrame> {
        let mut columns = vec![
            Column::new("trace_id".into(), std::mem::take(&mut self.trace_id)),
            Column::new("span_id".into(), std::mem::take(&mut self.span_id)),
            Column::new(
                "parent_span_id".into(),
                std::mem::take(&mut self.parent_span_id),
            ),
        ];
        columns.extend(self.resource.columns());
        columns.extend([
            Column::new("name".into(), std::mem::take(&mut self.name)),
            Column::new("kind".into(), std::mem::take(&mut self.kind)),
            Column::new(
                "start_unix_nano".into(),
                std::mem::take(&mut self.start_unix_nano),
            ),
            Column::new(
                "end_unix_nano".into(),
                std::mem::take(&mut self.end_unix_nano),
            ),
            Column::new("duration_ns".into(), std::mem::take(&mut self.duration_ns)),
            Column::new("error".into(), std::mem::take(&mut self.error)),
            Column::new("error_type".into(), std::mem::take(&mut self.error_type)),
            Column::new("peer".into(), std::mem::take(&mut self.peer)),
            Column::new(
                "resend_count".into(),
                std::mem::take(&mut self.resend_count),
            ),
            Column::new(
                "linked_trace_id".into(),
                std::mem::take(&mut self.linked_trace_id),
            ),
        ]);
        DataFrame::new_infer_height(columns)
    }
}

/// Rows of the `metrics` table: one per data point. Histograms keep
/// their count and sum (the buckets stay in the OTLP files).
#[derive(Default)]
pub struct MetricRows {
    resource: Resource,
    metric: Vec<String>,
    unit: Vec<String>,
    kind: Vec<&'static str>,
    start_unix_nano: Vec<u64>,
    time_unix_nano: Vec<u64>,
    value: Vec<Option<f64>>,
    count: Vec<Option<u64>>,
    sum: Vec<Option<f64>>,
}

impl MetricRows {
    pub fn len(&self) -> usize {
        self.metric.len()
    }

    pub fn is_empty(&self) -> bool {
        self.metric.is_empty()
    }

    pub fn push(&mut self, request: &ExportMetricsServiceRequest) {
        for resource_metrics in &request.resource_metrics {
            let attributes = resource_metrics
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            for metric in resource_metrics
                .scope_metrics
                .iter()
                .flat_map(|s| &s.metrics)
            {
                let mut row = |kind, start, time, value, count, sum| {
                    self.resource.push(attributes);
                    self.metric.push(metric.name.clone());
                    self.unit.push(metric.unit.clone());
                    self.kind.push(kind);
                    self.start_unix_nano.push(start);
                    self.time_unix_nano.push(time);
                    self.value.push(value);
                    self.count.push(count);
                    self.sum.push(sum);
                };
                let number = |v: Option<number_data_point::Value>| match v {
                    Some(number_data_point::Value::AsDouble(d)) => Some(d),
                    Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
                    None => None,
                };
                match &metric.data {
                    Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| {
                        row(
                            "gauge",
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            number(p.value),
                            None,
                            None,
                        )
                    }),
                    Some(Data::Sum(s)) => s.data_points.iter().for_each(|p| {
                        row(
                            "sum",
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            number(p.value),
                            None,
                            None,
                        )
                    }),
                    Some(Data::Histogram(h)) => h.data_points.iter().for_each(|p| {
                        row(
                            "histogram",
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                            None,
                            Some(p.count),
                            p.sum,
                        )
                    }),
                    _ => {}
                }
            }
        }
    }

    pub fn take(&mut self) -> PolarsResult<DataFrame> {
        let mut columns = self.resource.columns();
        columns.extend([
            Column::new("metric".into(), std::mem::take(&mut self.metric)),
            Column::new("unit".into(), std::mem::take(&mut self.unit)),
            Column::new("kind".into(), std::mem::take(&mut self.kind)),
            Column::new(
                "start_unix_nano".into(),
                std::mem::take(&mut self.start_unix_nano),
            ),
            Column::new(
                "time_unix_nano".into(),
                std::mem::take(&mut self.time_unix_nano),
            ),
            Column::new("value".into(), std::mem::take(&mut self.value)),
            Column::new("count".into(), std::mem::take(&mut self.count)),
            Column::new("sum".into(), std::mem::take(&mut self.sum)),
        ]);
        DataFrame::new_infer_height(columns)
    }
}

/// The `labels` table: one row per scheduled fault.
pub fn labels(labels: &[GroundTruth]) -> PolarsResult<DataFrame> {
    let strings = |f: fn(&GroundTruth) -> String| labels.iter().map(f).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new("fault".into(), strings(|l| l.fault.clone())),
        Column::new(
            "negative_control".into(),
            labels
                .iter()
                .map(|l| l.negative_control)
                .collect::<Vec<_>>(),
        ),
        Column::new("service".into(), strings(|l| l.service.clone())),
        Column::new(
            "instance".into(),
            labels
                .iter()
                .map(|l| l.instance.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new("region".into(), strings(|l| l.region.clone())),
        Column::new(
            "start_unix_nano".into(),
            labels.iter().map(|l| l.start_unix_nano).collect::<Vec<_>>(),
        ),
        Column::new(
            "end_unix_nano".into(),
            labels.iter().map(|l| l.end_unix_nano).collect::<Vec<_>>(),
        ),
        Column::new("affected".into(), strings(|l| l.affected.join(","))),
    ])
}
