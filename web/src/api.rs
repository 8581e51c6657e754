//! REST endpoints under `/api/v1/`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use meshtwin_model::anomaly::Anomaly;
use meshtwin_model::incident::{Incident, IncidentState};

use crate::WebState;

/// `GET /api/v1/graph`: the latest snapshot, with its version.
pub(crate) async fn graph(State(state): State<WebState>) -> Response {
    let snapshot = state.view.borrow().snapshot.clone();
    Json(snapshot.as_ref()).into_response()
}

/// `GET /api/v1/anomalies`: the detectors' latest alarms (at most 1,000),
/// newest first, with the counter of all alarms raised since start.
pub(crate) async fn anomalies(State(state): State<WebState>) -> Response {
    let (anomalies, total) = {
        let view = state.view.borrow();
        (view.anomalies.clone(), view.counters.anomalies)
    };
    let newest_first: Vec<&Anomaly> = anomalies.iter().rev().collect();
    Json(serde_json::json!({
        "total": total,
        "anomalies": newest_first,
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct IncidentFilter {
    /// `open` or `resolved`; all when absent.
    state: Option<String>,
}

/// `GET /api/v1/incidents[?state=open|resolved]`: the incidents kept (at
/// most 500), newest first.
pub(crate) async fn incidents(
    State(state): State<WebState>,
    Query(filter): Query<IncidentFilter>,
) -> Response {
    let wanted = match filter.state.as_deref() {
        None => None,
        Some("open") => Some(IncidentState::Open),
        Some("resolved") => Some(IncidentState::Resolved),
        Some(other) => {
            let message = format!("state={other:?}: expected open or resolved");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": message })),
            )
                .into_response();
        }
    };
    let incidents = state.view.borrow().incidents.clone();
    let newest_first: Vec<&Incident> = incidents
        .iter()
        .rev()
        .filter(|i| wanted.is_none_or(|w| i.state == w))
        .collect();
    Json(serde_json::json!({ "incidents": newest_first })).into_response()
}

/// `GET /api/v1/incidents/{id}`.
pub(crate) async fn incident(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        let message = format!("{id:?} is not an incident id (a number)");
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": message })),
        )
            .into_response();
    };
    let incidents = state.view.borrow().incidents.clone();
    match incidents.iter().find(|i| i.id == id) {
        Some(incident) => Json(incident).into_response(),
        None => {
            let message = format!("no incident {id} (the latest 500 are kept)");
            (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({ "error": message })),
            )
                .into_response()
        }
    }
}

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}
