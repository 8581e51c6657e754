//! One generated case, read back from its OTLP files into what the
//! rankers look at: span rows (service, operation, kind, timing, error,
//! parent) and per-service metric series, with names interned.

use std::path::Path;

use foldhash::{HashMap, HashSet};
use meshtwin_datasets::dataset::{DatasetError, DatasetReader, Payload};
use meshtwin_datasets::sim::GroundTruth;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

/// Index into [`CaseData::names`].
pub type Name = u32;

/// One span, as the rankers need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRow {
    pub trace: u128,
    pub span: u64,
    /// 0 for a root.
    pub parent: u64,
    /// The reporting service.
    pub service: Name,
    /// Its instance (`service.instance.id`), when it says.
    pub instance: Option<Name>,
    /// The service called, for CLIENT and PRODUCER spans that name one.
    pub peer: Option<Name>,
    pub operation: Name,
    pub kind: SpanKind,
    pub start: u64,
    pub end: u64,
    pub error: bool,
    /// Attempts beyond the first (`http.request.resend_count`).
    pub retries: u32,
    /// A CLIENT or PRODUCER span to a service that reports spans, with no
    /// span of the callee under it: the call never reached it (refused,
    /// lost, timed out in the queue), so the callee did not record it.
    pub unanswered: bool,
}

impl SpanRow {
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// The service whose work this span measures: the reporter of a
    /// SERVER or CONSUMER span; the service a CLIENT or PRODUCER span
    /// calls when that one left no record of it (a datastore, a broker,
    /// or a service the call never reached).
    pub fn worker(&self, reports_spans: &[bool]) -> Option<Name> {
        match self.kind {
            SpanKind::Server | SpanKind::Consumer => Some(self.service),
            SpanKind::Client | SpanKind::Producer => self.peer.filter(|peer| {
                self.unanswered || !reports_spans.get(*peer as usize).copied().unwrap_or(false)
            }),
            _ => None,
        }
    }
}

/// One instance's metric value at a time, by service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRow {
    pub service: Name,
    pub instance: Option<Name>,
    pub metric: Name,
    pub time: u64,
    pub value: f64,
}

/// A case's spans, metrics and ground truth.
#[derive(Debug, Clone, Default)]
pub struct CaseData {
    pub names: Vec<String>,
    index: HashMap<String, Name>,
    pub spans: Vec<SpanRow>,
    pub metrics: Vec<MetricRow>,
    /// Per name: whether that service reports SERVER or CONSUMER spans.
    pub reports_spans: Vec<bool>,
    pub labels: Vec<GroundTruth>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Records that could not be read (counted, not fatal).
    pub unreadable: u64,
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn integer(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::IntValue(n) => Some(*n),
            _ => None,
        }
    })
}

fn id<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap_or([0; N])
}

impl CaseData {
    pub fn name(&mut self, text: &str) -> Name {
        if let Some(&name) = self.index.get(text) {
            return name;
        }
        let name = self.names.len() as Name;
        self.names.push(text.to_owned());
        self.index.insert(text.to_owned(), name);
        name
    }

    pub fn lookup(&self, text: &str) -> Option<Name> {
        self.index.get(text).copied()
    }

    /// Reads the dataset in `dir`.
    pub fn load(dir: &Path) -> Result<Self, DatasetError> {
        let reader = DatasetReader::open(dir)?;
        let mut data = CaseData {
            labels: meshtwin_datasets::dataset::read_labels(dir)?,
            start_unix_nano: reader.manifest.start_unix_nano,
            end_unix_nano: reader.manifest.end_unix_nano,
            ..CaseData::default()
        };
        for batch in reader {
            match batch {
                Ok(batch) => match batch.payload {
                    Payload::Traces(request) => {
                        for resource in &request.resource_spans {
                            let attributes = resource
                                .resource
                                .as_ref()
                                .map(|r| r.attributes.as_slice())
                                .unwrap_or_default();
                            let service = text(attributes, "service.name").unwrap_or("unknown");
                            let service = data.name(service);
                            let instance =
                                text(attributes, "service.instance.id").map(|i| data.name(i));
                            for span in resource.scope_spans.iter().flat_map(|s| &s.spans) {
                                let peer = text(&span.attributes, "server.address")
                                    .map(|p| p.split(':').next().unwrap_or(p).to_owned());
                                let row = SpanRow {
                                    trace: u128::from_be_bytes(id(&span.trace_id)),
                                    span: u64::from_be_bytes(id(&span.span_id)),
                                    parent: u64::from_be_bytes(id(&span.parent_span_id)),
                                    service,
                                    instance,
                                    peer: peer.map(|p| data.name(&p)),
                                    operation: data.name(&span.name),
                                    kind: SpanKind::try_from(span.kind)
                                        .unwrap_or(SpanKind::Unspecified),
                                    start: span.start_time_unix_nano,
                                    end: span.end_time_unix_nano,
                                    error: span
                                        .status
                                        .as_ref()
                                        .is_some_and(|s| s.code == StatusCode::Error as i32),
                                    retries: integer(&span.attributes, "http.request.resend_count")
                                        .map_or(0, |n| n.clamp(0, i64::from(u32::MAX)) as u32),
                                    unanswered: false,
                                };
                                data.spans.push(row);
                            }
                        }
                    }
                    Payload::Metrics(request) => data.read_metrics(&request),
                },
                Err(_) => data.unreadable += 1,
            }
        }
        data.reports_spans = vec![false; data.names.len()];
        let mut parents: HashSet<(u128, u64)> = HashSet::default();
        for span in &data.spans {
            if matches!(span.kind, SpanKind::Server | SpanKind::Consumer) {
                data.reports_spans[span.service as usize] = true;
            }
            parents.insert((span.trace, span.parent));
        }
        for span in &mut data.spans {
            let calls_a_reporter = span
                .peer
                .is_some_and(|peer| data.reports_spans[peer as usize]);
            span.unanswered = matches!(span.kind, SpanKind::Client | SpanKind::Producer)
                && calls_a_reporter
                && !parents.contains(&(span.trace, span.span));
        }
        Ok(data)
    }

    /// Gauges and per-interval histogram means, by service.
    fn read_metrics(
        &mut self,
        request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    ) {
        for resource in &request.resource_metrics {
            let attributes = resource
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let service = self.name(text(attributes, "service.name").unwrap_or("unknown"));
            let instance = text(attributes, "service.instance.id").map(|i| self.name(i));
            for metric in resource.scope_metrics.iter().flat_map(|s| &s.metrics) {
                let name = self.name(&metric.name);
                let mut push = |time, value| {
                    self.metrics.push(MetricRow {
                        service,
                        instance,
                        metric: name,
                        time,
                        value,
                    })
                };
                match &metric.data {
                    Some(Data::Gauge(gauge)) => {
                        for point in &gauge.data_points {
                            let value = match point.value {
                                Some(number_data_point::Value::AsDouble(v)) => v,
                                Some(number_data_point::Value::AsInt(v)) => v as f64,
                                None => continue,
                            };
                            push(point.time_unix_nano, value);
                        }
                    }
                    Some(Data::Histogram(histogram)) => {
                        for point in &histogram.data_points {
                            if let Some(sum) = point.sum.filter(|_| point.count > 0) {
                                push(point.time_unix_nano, sum / point.count as f64);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Candidate root causes: every service that does work in the case
    /// (reports server spans, or is a datastore called by one), by name.
    pub fn candidates(&self) -> Vec<Name> {
        let mut seen = vec![false; self.names.len()];
        for span in &self.spans {
            if let Some(worker) = span.worker(&self.reports_spans) {
                seen[worker as usize] = true;
            }
        }
        let mut candidates: Vec<Name> = (0..self.names.len() as Name)
            .filter(|&n| seen[n as usize])
            .collect();
        candidates.sort_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
        candidates
    }
}
