//! The graph's past, from the twin's snapshots kept in the store.
//!
//! `GET /api/v1/graph?at=T`: the graph as the last snapshot at or before
//! `T` kept it (without `at`: the live graph, `api::graph`).
//! `GET /api/v1/graph/history`: the first and last snapshot kept.
//! `GET /api/v1/graph/diff?from=T1[&to=T2][&limit=N]`: nodes and edges
//! that appeared and vanished between the two, and the metrics that moved
//! most (`to` defaults to the twin's clock).
//!
//! Times are the twin's event time, RFC 3339 or Unix seconds. 404 when no
//! snapshot is that old; errors as in `traces`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::WebState;
use crate::instant::parse_instant;
use crate::traces::{bad_request, failure, no_store};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GraphParams {
    at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffParams {
    from: String,
    to: Option<String>,
    limit: Option<usize>,
}

const DEFAULT_CHANGES: usize = 20;
const MAX_CHANGES: usize = 1000;

fn no_snapshot(state: &WebState, at: i64) -> Response {
    state.query_metrics.count("not_found");
    let body = serde_json::json!({
        "error": format!(
            "no snapshot of the graph was kept at or before {} (see GET /api/v1/graph/history)",
            crate::instant::format_instant(at)
        ),
        "kind": "not_found",
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// `GET /api/v1/graph[?at=T]`.
pub(crate) async fn graph(
    State(state): State<WebState>,
    params: Result<Query<GraphParams>, QueryRejection>,
) -> Response {
    let at = match params {
        Ok(Query(GraphParams { at: None })) => return crate::api::graph(State(state)).await,
        Ok(Query(GraphParams { at: Some(at) })) => at,
        Err(rejection) => return bad_request(&state, rejection.body_text()),
    };
    let Some(engine) = state.query.clone() else {
        return no_store(&state, "the graph's history");
    };
    let at = match parse_instant("at", &at) {
        Ok(at) => at,
        Err(message) => return bad_request(&state, message),
    };
    match engine.graph_at(at).await {
        Ok(Some(graph)) => {
            state.query_metrics.count("ok");
            Json(graph).into_response()
        }
        Ok(None) => no_snapshot(&state, at),
        Err(error) => failure(&state, &error),
    }
}

/// `GET /api/v1/graph/history`.
pub(crate) async fn range(State(state): State<WebState>) -> Response {
    let Some(engine) = state.query.clone() else {
        return no_store(&state, "the graph's history");
    };
    match engine.history_range().await {
        Ok(range) => {
            state.query_metrics.count("ok");
            Json(range).into_response()
        }
        Err(error) => failure(&state, &error),
    }
}

/// `GET /api/v1/graph/diff`.
pub(crate) async fn diff(
    State(state): State<WebState>,
    params: Result<Query<DiffParams>, QueryRejection>,
) -> Response {
    let Some(engine) = state.query.clone() else {
        return no_store(&state, "the graph's history");
    };
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return bad_request(&state, rejection.body_text()),
    };
    let from = match parse_instant("from", &params.from) {
        Ok(from) => from,
        Err(message) => return bad_request(&state, message),
    };
    let to = match params.to.as_deref().map(|to| parse_instant("to", to)) {
        Some(Ok(to)) => to,
        Some(Err(message)) => return bad_request(&state, message),
        None => i64::try_from(state.view.borrow().snapshot.at_unix_nanos).unwrap_or(i64::MAX),
    };
    let limit = params.limit.unwrap_or(DEFAULT_CHANGES);
    if !(1..=MAX_CHANGES).contains(&limit) {
        return bad_request(
            &state,
            format!("limit must be between 1 and {MAX_CHANGES}, not {limit}"),
        );
    }
    if to <= from {
        return bad_request(&state, "from must be before to".to_owned());
    }
    match engine.graph_diff(from, to, limit).await {
        Ok(Some(diff)) => {
            state.query_metrics.count("ok");
            Json(diff).into_response()
        }
        Ok(None) => no_snapshot(&state, from),
        Err(error) => failure(&state, &error),
    }
}
