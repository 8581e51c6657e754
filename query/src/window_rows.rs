//! Every span and metric point of a time window, in the few columns
//! root-cause ranking reads (`POST /api/v1/rca`), bounded in count.

use serde::Deserialize;

use crate::output::typed_rows;
use crate::traces::{Params, TimeRange};
use crate::{QueryEngine, QueryError, QueryRequest};

/// One span, as ranking reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
        self.window_rows(sql, params, limit).await
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
        self.window_rows(sql, params, limit).await
    }

    async fn window_rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: String,
        params: Params,
        limit: usize,
    ) -> Result<WindowRows<T>, QueryError> {
        let request = QueryRequest {
            sql,
            max_rows: None,
            timeout: None,
            params: params.0,
        };
        let result = self.run_up_to(request, limit).await?;
        Ok(WindowRows {
            rows: typed_rows(&result)?,
            truncated: result.truncated,
        })
    }
}
