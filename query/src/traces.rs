//! Traces out of the `spans` table: one trace whole, with its critical
//! path (`QueryEngine::trace`), and a search for traces by service,
//! operation, caller, peer, duration, status and time
//! (`QueryEngine::search_traces`). Both are SQL run like any other query
//! (same runtime, limits and timeout); what the caller typed reaches it
//! only as bound parameters, never as SQL text.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::critical_path::{PathSegment, Timing, critical_path};
use crate::output::typed_rows;
use crate::{QueryEngine, QueryError, QueryRequest};

/// The most spans one trace returns.
pub const MAX_TRACE_SPANS: usize = 20_000;
/// The most traces one search returns.
pub const MAX_SEARCH_RESULTS: usize = 500;

/// A W3C trace ID: 32 lowercase hex digits, not all zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceId(String);

impl std::str::FromStr for TraceId {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Self, QueryError> {
        let id = text.trim().to_ascii_lowercase();
        let hex = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex || id.bytes().all(|b| b == b'0') {
            return Err(invalid(format!(
                "a trace ID is 32 hex digits, not all zero; got {text:?}"
            )));
        }
        Ok(Self(id))
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(message: String) -> QueryError {
    QueryError::Invalid {
        message,
        line: None,
        column: None,
    }
}

/// Start times, as Unix nanoseconds: `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

/// One span of a trace, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSpan {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub namespace: Option<String>,
    pub instance: Option<String>,
    pub version: Option<String>,
    pub region: Option<String>,
    pub name: String,
    pub kind: String,
    pub start_unix_nanos: i64,
    pub end_unix_nanos: i64,
    pub duration_ns: i64,
    pub status_code: String,
    pub error: bool,
    pub status_message: Option<String>,
    pub peer: Option<String>,
    pub http_status: Option<i64>,
    pub grpc_status: Option<i64>,
    pub error_type: Option<String>,
    pub attributes: BTreeMap<String, Option<String>>,
    /// Time this span spent on the trace's critical path.
    #[serde(default)]
    pub critical_ns: i64,
}

/// A whole trace, spans in start order, with its critical path.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub trace_id: String,
    pub start_unix_nanos: i64,
    pub end_unix_nanos: i64,
    pub duration_ns: i64,
    pub span_count: usize,
    pub error_count: usize,
    /// Services with spans in the trace, by name.
    pub services: Vec<String>,
    /// More spans matched than `MAX_TRACE_SPANS`; the rest were left out.
    pub truncated: bool,
    pub spans: Vec<TraceSpan>,
    pub critical_path: Vec<PathSegment>,
    pub elapsed_seconds: f64,
}

/// Which span status a search wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    Error,
    Ok,
}

/// How search results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchOrder {
    /// The latest matching span first.
    #[default]
    Recent,
    /// The longest matching span first.
    Slowest,
}

/// Traces with at least one span that matches every filter given.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSearch {
    /// The span's service.
    pub service: Option<String>,
    /// The span's name (its operation).
    pub operation: Option<String>,
    /// The service of the span's parent: with `service`, the calls on
    /// the graph edge `caller → service`.
    pub caller: Option<String>,
    /// The span's `peer` (a callee with no spans of its own: a database).
    pub peer: Option<String>,
    pub min_duration: Option<Duration>,
    pub max_duration: Option<Duration>,
    pub status: Option<StatusFilter>,
    pub range: TimeRange,
    pub order: SearchOrder,
    pub limit: usize,
}

/// A trace found by a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    pub trace_id: String,
    pub root_service: String,
    pub root_name: String,
    pub start_unix_nanos: i64,
    pub duration_ns: i64,
    pub span_count: i64,
    pub error_count: i64,
    /// The longest of the trace's spans that matched.
    pub matched_duration_ns: i64,
}

/// The stretch around a search's range where the rest of its traces'
/// spans are looked for.
const TRACE_SLACK_NANOS: i64 = 15 * 60 * 1_000_000_000;

const SPAN_COLUMNS: &str = "span_id, parent_span_id, service, namespace, instance, version, \
    region, name, kind, CAST(start_time AS BIGINT) AS start_unix_nanos, \
    CAST(end_time AS BIGINT) AS end_unix_nanos, duration_ns, status_code, error, \
    status_message, peer, http_status, grpc_status, error_type, attributes";

/// Positional SQL parameters (`$1`, `$2`, ...).
#[derive(Default)]
pub(crate) struct Params(pub(crate) Vec<ScalarValue>);

impl Params {
    fn bind(&mut self, value: ScalarValue) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    pub(crate) fn text(&mut self, value: &str) -> String {
        self.bind(ScalarValue::Utf8(Some(value.to_owned())))
    }

    pub(crate) fn time(&mut self, unix_nanos: i64) -> String {
        self.bind(ScalarValue::TimestampNanosecond(
            Some(unix_nanos),
            Some("UTC".into()),
        ))
    }

    fn int(&mut self, value: i64) -> String {
        self.bind(ScalarValue::Int64(Some(value)))
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

impl QueryEngine {
    /// The spans of `trace_id`, with its critical path; `None` when the
    /// store has none. `range`, when known, narrows the files read.
    pub async fn trace(
        &self,
        trace_id: &TraceId,
        range: Option<TimeRange>,
    ) -> Result<Option<Trace>, QueryError> {
        let mut params = Params::default();
        let mut sql = format!(
            "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = {}",
            params.text(&trace_id.0)
        );
        if let Some(range) = range {
            sql += &format!(
                " AND start_time >= {} AND start_time < {}",
                params.time(range.from),
                params.time(range.to)
            );
        }
        sql += " ORDER BY start_time, span_id";
        let result = self
            .run(QueryRequest {
                sql,
                max_rows: Some(MAX_TRACE_SPANS),
                timeout: None,
                params: params.0,
            })
            .await?;
        let mut spans: Vec<TraceSpan> = typed_rows(&result)?;
        // An exporter that retried may have delivered a span twice.
        let mut seen = HashSet::new();
        spans.retain(|span| seen.insert(span.span_id.clone()));
        if spans.is_empty() {
            return Ok(None);
        }
        Ok(Some(assemble(
            trace_id,
            spans,
            result.truncated,
            result.elapsed,
        )))
    }

    /// Traces with a span matching `search`, at most `search.limit`.
    pub async fn search_traces(
        &self,
        search: &TraceSearch,
    ) -> Result<Vec<TraceSummary>, QueryError> {
        if search.range.to <= search.range.from {
            return Err(invalid("the search's time range is empty".to_owned()));
        }
        let limit = search.limit.clamp(1, MAX_SEARCH_RESULTS);
        let mut params = Params::default();
        let from = params.time(search.range.from);
        let to = params.time(search.range.to);
        let mut filters = vec![
            format!("m.start_time >= {from}"),
            format!("m.start_time < {to}"),
        ];
        let mut join = String::new();
        if let Some(caller) = &search.caller {
            join = format!(
                " JOIN spans p ON p.trace_id = m.trace_id AND p.span_id = m.parent_span_id \
                 AND p.service = {} AND p.start_time >= {} AND p.start_time < {}",
                params.text(caller),
                params.time(search.range.from.saturating_sub(TRACE_SLACK_NANOS)),
                to
            );
        }
        for (column, value) in [
            ("service", &search.service),
            ("name", &search.operation),
            ("peer", &search.peer),
        ] {
            if let Some(value) = value {
                filters.push(format!("m.{column} = {}", params.text(value)));
            }
        }
        if let Some(min) = search.min_duration {
            filters.push(format!("m.duration_ns >= {}", params.int(nanos(min))));
        }
        if let Some(max) = search.max_duration {
            filters.push(format!("m.duration_ns <= {}", params.int(nanos(max))));
        }
        match search.status {
            Some(StatusFilter::Error) => filters.push("m.error".to_owned()),
            Some(StatusFilter::Ok) => filters.push("NOT m.error".to_owned()),
            None => {}
        }
        let order = match search.order {
            SearchOrder::Recent => "latest DESC, trace_id",
            SearchOrder::Slowest => "matched_duration_ns DESC, trace_id",
        };
        let around_from = params.time(search.range.from.saturating_sub(TRACE_SLACK_NANOS));
        let around_to = params.time(search.range.to.saturating_add(TRACE_SLACK_NANOS));
        let sql = format!(
            "WITH hits AS (\
               SELECT m.trace_id, max(m.duration_ns) AS matched_duration_ns, \
                      max(m.start_time) AS latest \
               FROM spans m{join} WHERE {filters} \
               GROUP BY m.trace_id ORDER BY {order} LIMIT {limit}) \
             SELECT h.trace_id, \
               first_value(s.service ORDER BY s.parent_span_id IS NOT NULL, s.start_time) AS root_service, \
               first_value(s.name ORDER BY s.parent_span_id IS NOT NULL, s.start_time) AS root_name, \
               CAST(min(s.start_time) AS BIGINT) AS start_unix_nanos, \
               CAST(max(s.end_time) AS BIGINT) - CAST(min(s.start_time) AS BIGINT) AS duration_ns, \
               count(*) AS span_count, \
               sum(CASE WHEN s.error THEN 1 ELSE 0 END) AS error_count, \
               h.matched_duration_ns, h.latest \
             FROM hits h JOIN spans s ON s.trace_id = h.trace_id \
             WHERE s.start_time >= {around_from} AND s.start_time < {around_to} \
             GROUP BY h.trace_id, h.matched_duration_ns, h.latest \
             ORDER BY {order}",
            filters = filters.join(" AND "),
        );
        let result = self
            .run(QueryRequest {
                sql,
                max_rows: Some(limit),
                timeout: None,
                params: params.0,
            })
            .await?;
        typed_rows(&result)
    }
}

/// A trace from its spans (in start order): totals and critical path.
fn assemble(
    trace_id: &TraceId,
    mut spans: Vec<TraceSpan>,
    truncated: bool,
    elapsed: Duration,
) -> Trace {
    let timings: Vec<Timing<'_>> = spans
        .iter()
        .map(|span| Timing {
            span_id: &span.span_id,
            parent_span_id: span.parent_span_id.as_deref(),
            start: span.start_unix_nanos,
            end: span.end_unix_nanos,
        })
        .collect();
    let path = critical_path(&timings);
    let mut on_path: BTreeMap<&str, i64> = BTreeMap::new();
    for segment in &path {
        *on_path.entry(&segment.span_id).or_default() +=
            segment.end_unix_nanos - segment.start_unix_nanos;
    }
    let on_path: BTreeMap<String, i64> = on_path
        .into_iter()
        .map(|(id, ns)| (id.to_owned(), ns))
        .collect();
    for span in &mut spans {
        span.critical_ns = on_path.get(&span.span_id).copied().unwrap_or(0);
    }
    let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_unix_nanos).max().unwrap_or(0);
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    Trace {
        trace_id: trace_id.to_string(),
        start_unix_nanos: start,
        end_unix_nanos: end,
        duration_ns: end - start,
        span_count: spans.len(),
        error_count: spans.iter().filter(|s| s.error).count(),
        services,
        truncated,
        critical_path: path,
        spans,
        elapsed_seconds: elapsed.as_secs_f64(),
    }
}
