//! Reads a dataset back as one stream of requests in time order, traces
//! and metrics merged, for replay and evaluation.

use std::path::Path;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

use super::files::{RecordError, RequestReader};
use super::{DatasetError, Manifest, io_error, read_manifest};

/// One OTLP request of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

/// A request and the latest time in it (when it would have been sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub at_unix_nano: u64,
    pub payload: Payload,
}

impl Batch {
    fn traces(request: ExportTraceServiceRequest) -> Self {
        let at = spans(&request)
            .map(|s| s.end_time_unix_nano)
            .max()
            .unwrap_or(0);
        Self {
            at_unix_nano: at,
            payload: Payload::Traces(request),
        }
    }

    fn metrics(mut request: ExportMetricsServiceRequest) -> Self {
        let mut at = 0;
        for_each_point_time(&mut request, |_, time| at = at.max(*time));
        Self {
            at_unix_nano: at,
            payload: Payload::Metrics(request),
        }
    }

    /// Spans in a trace request; 0 for metrics.
    pub fn span_count(&self) -> usize {
        match &self.payload {
            Payload::Traces(request) => spans(request).count(),
            Payload::Metrics(_) => 0,
        }
    }

    /// Data points in a metrics request; 0 for traces.
    pub fn point_count(&self) -> usize {
        match &self.payload {
            Payload::Traces(_) => 0,
            Payload::Metrics(request) => data_points(request),
        }
    }

    /// Moves every timestamp by `delta` nanoseconds (saturating at 0).
    pub fn shift_time(&mut self, delta: i128) {
        let shift = |t: &mut u64| {
            if *t != 0 {
                *t = (i128::from(*t) + delta).clamp(0, i128::from(u64::MAX)) as u64;
            }
        };
        self.at_unix_nano = {
            let mut at = self.at_unix_nano;
            shift(&mut at);
            at
        };
        match &mut self.payload {
            Payload::Traces(request) => {
                for span in request
                    .resource_spans
                    .iter_mut()
                    .flat_map(|r| &mut r.scope_spans)
                    .flat_map(|s| &mut s.spans)
                {
                    shift(&mut span.start_time_unix_nano);
                    shift(&mut span.end_time_unix_nano);
                    span.events
                        .iter_mut()
                        .for_each(|e| shift(&mut e.time_unix_nano));
                }
            }
            Payload::Metrics(request) => {
                for_each_point_time(request, |start, time| {
                    shift(start);
                    shift(time);
                });
            }
        }
    }
}

/// Data points in a metrics request.
pub(super) fn data_points(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

fn spans(
    request: &ExportTraceServiceRequest,
) -> impl Iterator<Item = &opentelemetry_proto::tonic::trace::v1::Span> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

/// Calls `f(start_time, time)` for every data point.
fn for_each_point_time(
    request: &mut ExportMetricsServiceRequest,
    mut f: impl FnMut(&mut u64, &mut u64),
) {
    let metrics = request
        .resource_metrics
        .iter_mut()
        .flat_map(|r| &mut r.scope_metrics)
        .flat_map(|s| &mut s.metrics);
    for metric in metrics {
        match &mut metric.data {
            Some(Data::Gauge(g)) => g
                .data_points
                .iter_mut()
                .for_each(|p| f(&mut p.start_time_unix_nano, &mut p.time_unix_nano)),
            Some(Data::Sum(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| f(&mut p.start_time_unix_nano, &mut p.time_unix_nano)),
            Some(Data::Histogram(h)) => h
                .data_points
                .iter_mut()
                .for_each(|p| f(&mut p.start_time_unix_nano, &mut p.time_unix_nano)),
            Some(Data::ExponentialHistogram(h)) => h
                .data_points
                .iter_mut()
                .for_each(|p| f(&mut p.start_time_unix_nano, &mut p.time_unix_nano)),
            Some(Data::Summary(s)) => s
                .data_points
                .iter_mut()
                .for_each(|p| f(&mut p.start_time_unix_nano, &mut p.time_unix_nano)),
            None => {}
        }
    }
}

/// A dataset's requests, traces and metrics merged by time. A record that
/// cannot be read comes out as an error in its place; after a fatal one
/// (broken framing) that file yields nothing more.
pub struct DatasetReader {
    pub manifest: Manifest,
    traces: RequestReader<ExportTraceServiceRequest>,
    metrics: RequestReader<ExportMetricsServiceRequest>,
    next_trace: Option<Result<Batch, RecordError>>,
    next_metrics: Option<Result<Batch, RecordError>>,
}

impl DatasetReader {
    pub fn open(dir: &Path) -> Result<Self, DatasetError> {
        let manifest = read_manifest(dir)?;
        let traces_path = manifest.traces_path(dir);
        let metrics_path = manifest.metrics_path(dir);
        let mut traces = RequestReader::open(&traces_path).map_err(io_error(&traces_path))?;
        let mut metrics = RequestReader::open(&metrics_path).map_err(io_error(&metrics_path))?;
        let next_trace = traces.next().map(|r| r.map(Batch::traces));
        let next_metrics = metrics.next().map(|r| r.map(Batch::metrics));
        Ok(Self {
            manifest,
            traces,
            metrics,
            next_trace,
            next_metrics,
        })
    }

    /// Requests in the dataset, from its manifest.
    pub fn request_count(&self) -> u64 {
        self.manifest.trace_requests + self.manifest.metric_requests
    }
}

impl Iterator for DatasetReader {
    type Item = Result<Batch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let take_trace = match (&self.next_trace, &self.next_metrics) {
            (None, None) => return None,
            (Some(_), None) | (Some(Err(_)), _) => true,
            (None, Some(_)) | (_, Some(Err(_))) => false,
            (Some(Ok(t)), Some(Ok(m))) => t.at_unix_nano <= m.at_unix_nano,
        };
        if take_trace {
            let next = self.traces.next().map(|r| r.map(Batch::traces));
            std::mem::replace(&mut self.next_trace, next)
        } else {
            let next = self.metrics.next().map(|r| r.map(Batch::metrics));
            std::mem::replace(&mut self.next_metrics, next)
        }
    }
}
