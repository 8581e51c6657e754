//! `POST /api/v1/query`: SQL over the stored spans, edges, nodes and
//! metrics. Body: `{"sql": "...", "format": "json|table|csv",
//! "max_rows": N, "timeout_seconds": S}` (all but `sql` optional, the
//! limits only lower the server's). JSON answers carry the columns, rows,
//! row count and whether the row limit cut them; table and CSV answers
//! are text, with `x-meshtwin-rows` and `x-meshtwin-truncated` headers.
//! Errors: `{"error", "kind", "line", "column"}` with 400 (the SQL is
//! wrong), 504 (timed out), 503 (no store) or 500.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use meshtwin_query::output::{self, Format};
use meshtwin_query::{QueryError, QueryRequest, QueryResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::WebState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryBody {
    sql: String,
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    max_rows: Option<usize>,
    #[serde(default)]
    timeout_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Queries answered, by outcome.
#[derive(Debug, Default)]
pub struct QueryMetrics {
    queries: Family<Outcome, Counter>,
}

impl QueryMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry
            .sub_registry_with_prefix("meshtwin_query")
            .register(
                "queries",
                "SQL queries and trace lookups answered, by outcome (ok, not_found, invalid, timeout, failed, unavailable)",
                self.queries.clone(),
            );
    }

    pub(crate) fn count(&self, outcome: &'static str) {
        self.queries.get_or_create(&Outcome { outcome }).inc();
    }
}

pub(crate) fn error_response(error: &QueryError) -> (StatusCode, &'static str, Response) {
    let (status, kind) = match error {
        QueryError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
        QueryError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        QueryError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
        QueryError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let (line, column) = error.position().unzip();
    let body = serde_json::json!({
        "error": error.to_string(),
        "kind": kind,
        "line": line,
        "column": column,
    });
    (status, kind, (status, Json(body)).into_response())
}

pub(crate) fn unavailable(message: &str) -> Response {
    let body = serde_json::json!({"error": message, "kind": "unavailable"});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

fn text(result: &QueryResult, body: String, content_type: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-meshtwin-rows", HeaderValue::from(result.rows));
    headers.insert(
        "x-meshtwin-truncated",
        HeaderValue::from_static(if result.truncated { "true" } else { "false" }),
    );
    response
}

fn render(result: &QueryResult, format: Format) -> Result<Response, QueryError> {
    Ok(match format {
        Format::Json => Json(serde_json::json!({
            "columns": output::columns(result),
            "rows": output::json_rows(result)?,
            "row_count": result.rows,
            "truncated": result.truncated,
            "elapsed_seconds": result.elapsed.as_secs_f64(),
        }))
        .into_response(),
        Format::Table => text(
            result,
            output::render(result, format)?,
            "text/plain; charset=utf-8",
        ),
        Format::Csv => text(
            result,
            output::render(result, format)?,
            "text/csv; charset=utf-8",
        ),
    })
}

pub(crate) async fn query(State(state): State<WebState>, Json(body): Json<QueryBody>) -> Response {
    let Some(engine) = state.query.clone() else {
        state.query_metrics.count("unavailable");
        return unavailable(
            "SQL needs the span store, which is off here; set [store] enabled = true",
        );
    };
    let timeout = match body.timeout_seconds {
        Some(s) if !(s > 0.0 && s <= 86_400.0) => {
            state.query_metrics.count("invalid");
            let error = QueryError::Invalid {
                message: format!("timeout_seconds must be above 0 and at most 86400, not {s}"),
                line: None,
                column: None,
            };
            return error_response(&error).2;
        }
        s => s.map(Duration::from_secs_f64),
    };
    let request = QueryRequest {
        sql: body.sql,
        max_rows: body.max_rows,
        timeout,
        params: Vec::new(),
    };
    let result = engine
        .run(request)
        .await
        .and_then(|result| render(&result, body.format.unwrap_or(Format::Json)));
    match result {
        Ok(response) => {
            state.query_metrics.count("ok");
            response
        }
        Err(error) => {
            let (_, kind, response) = error_response(&error);
            state.query_metrics.count(kind);
            response
        }
    }
}
