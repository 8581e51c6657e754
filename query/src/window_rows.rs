//! Every span and metric point of a time window, in the few columns
//! root-cause ranking reads (`POST /api/v1/rca`), bounded in count.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::traces::{Params, TimeRange};
use crate::{QueryEngine, QueryError, QueryRequest, QueryResult};

/// One span, as ranking reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub service: String,
    pub instance: Option<String>,
    pub name: String,
    pub kind: String,
    pub peer: Option<String>,
    pub start_unix_nanos: i64,
    pub end_unix_nanos: i64,
    pub error: bool,
    /// Attempts beyond the first, when the span says
    /// (`http.request.resend_count`, or the proxy's `mesh.retry.attempt`).
    pub retries: Option<String>,
    /// The proxy's `mesh.endpoint.ejections` and `mesh.breaker`.
    pub ejections: Option<String>,
    pub breaker: Option<String>,
}

/// One metric point: a gauge's or sum's value, or a histogram's mean.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowPoint {
    pub service: String,
    pub instance: Option<String>,
    pub name: String,
    pub time_unix_nanos: i64,
    pub value: f64,
}

/// Rows of one window, and whether the limit cut them short.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRows<T> {
    pub rows: Vec<T>,
    pub truncated: bool,
}

impl QueryEngine {
    /// Spans starting in `range`, at most `limit`.
    pub async fn spans_between(
        &self,
        range: TimeRange,
        limit: usize,
    ) -> Result<WindowRows<WindowSpan>, QueryError> {
        let mut params = Params::default();
        let sql = format!(
            "SELECT trace_id, span_id, parent_span_id, service, instance, name, kind, peer, \
               CAST(start_time AS BIGINT) AS start_unix_nanos, \
               CAST(end_time AS BIGINT) AS end_unix_nanos, error, \
               COALESCE(attributes['http.request.resend_count'], \
                        attributes['mesh.retry.attempt']) AS retries, \
               attributes['mesh.endpoint.ejections'] AS ejections, \
               attributes['mesh.breaker'] AS breaker \
             FROM spans WHERE start_time >= {} AND start_time < {}",
            params.time(range.from),
            params.time(range.to)
        );
        let result = self.window_rows(sql, params, limit).await?;
        Ok(WindowRows {
            rows: decoded(&result, span_rows)?,
            truncated: result.truncated,
        })
    }

    /// Metric points timed in `range`, at most `limit`.
    pub async fn metric_points_between(
        &self,
        range: TimeRange,
        limit: usize,
    ) -> Result<WindowRows<WindowPoint>, QueryError> {
        let mut params = Params::default();
        let sql = format!(
            "SELECT service, instance, name, CAST(time AS BIGINT) AS time_unix_nanos, \
               COALESCE(value, CASE WHEN count > 0 THEN sum / count END) AS value \
             FROM metrics WHERE time >= {} AND time < {} \
               AND COALESCE(value, CASE WHEN count > 0 THEN sum / count END) IS NOT NULL",
            params.time(range.from),
            params.time(range.to)
        );
        let result = self.window_rows(sql, params, limit).await?;
        Ok(WindowRows {
            rows: decoded(&result, point_rows)?,
            truncated: result.truncated,
        })
    }

    async fn window_rows(
        &self,
        sql: String,
        params: Params,
        limit: usize,
    ) -> Result<QueryResult, QueryError> {
        let request = QueryRequest {
            sql,
            max_rows: None,
            timeout: None,
            params: params.0,
        };
        self.run_up_to(request, limit).await
    }
}

/// Every batch's rows, read straight from their Arrow columns (hundreds
/// of thousands of spans: no detour through JSON).
fn decoded<T>(
    result: &QueryResult,
    rows: fn(&RecordBatch, &mut Vec<T>) -> Result<(), QueryError>,
) -> Result<Vec<T>, QueryError> {
    let mut out = Vec::with_capacity(result.rows);
    for batch in &result.batches {
        rows(batch, &mut out)?;
    }
    Ok(out)
}

/// Column `name` of `batch` as `to`, whatever type the store's files gave
/// it (plain or view strings, dictionaries).
fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef, QueryError> {
    let found = batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::Failed(format!("the store returned no column {name}")))?;
    cast(found, to).map_err(|e| QueryError::Failed(format!("column {name}: {e}")))
}

fn texts(batch: &RecordBatch, name: &str) -> Result<impl Fn(usize) -> Option<String>, QueryError> {
    let array = column(batch, name, &DataType::Utf8)?;
    Ok(move |i: usize| {
        let strings = array.as_string::<i32>();
        strings.is_valid(i).then(|| strings.value(i).to_owned())
    })
}

fn integers(batch: &RecordBatch, name: &str) -> Result<impl Fn(usize) -> i64, QueryError> {
    let array = column(batch, name, &DataType::Int64)?;
    Ok(move |i: usize| array.as_primitive::<Int64Type>().value(i))
}

fn span_rows(batch: &RecordBatch, out: &mut Vec<WindowSpan>) -> Result<(), QueryError> {
    let trace_id = texts(batch, "trace_id")?;
    let span_id = texts(batch, "span_id")?;
    let parent_span_id = texts(batch, "parent_span_id")?;
    let service = texts(batch, "service")?;
    let instance = texts(batch, "instance")?;
    let name = texts(batch, "name")?;
    let kind = texts(batch, "kind")?;
    let peer = texts(batch, "peer")?;
    let start = integers(batch, "start_unix_nanos")?;
    let end = integers(batch, "end_unix_nanos")?;
    let error = column(batch, "error", &DataType::Boolean)?;
    let error = error.as_boolean();
    let retries = texts(batch, "retries")?;
    let ejections = texts(batch, "ejections")?;
    let breaker = texts(batch, "breaker")?;
    for i in 0..batch.num_rows() {
        out.push(WindowSpan {
            trace_id: trace_id(i).unwrap_or_default(),
            span_id: span_id(i).unwrap_or_default(),
            parent_span_id: parent_span_id(i),
            service: service(i).unwrap_or_default(),
            instance: instance(i),
            name: name(i).unwrap_or_default(),
            kind: kind(i).unwrap_or_default(),
            peer: peer(i),
            start_unix_nanos: start(i),
            end_unix_nanos: end(i),
            error: error.is_valid(i) && error.value(i),
            retries: retries(i),
            ejections: ejections(i),
            breaker: breaker(i),
        });
    }
    Ok(())
}

fn point_rows(batch: &RecordBatch, out: &mut Vec<WindowPoint>) -> Result<(), QueryError> {
    let service = texts(batch, "service")?;
    let instance = texts(batch, "instance")?;
    let name = texts(batch, "name")?;
    let time = integers(batch, "time_unix_nanos")?;
    let value = column(batch, "value", &DataType::Float64)?;
    let value = value.as_primitive::<Float64Type>();
    for i in 0..batch.num_rows() {
        out.push(WindowPoint {
            service: service(i).unwrap_or_default(),
            instance: instance(i),
            name: name(i).unwrap_or_default(),
            time_unix_nanos: time(i),
            value: value.value(i),
        });
    }
    Ok(())
}
