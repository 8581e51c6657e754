//! REST endpoints under `/api/v1/`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use meshtwin_model::anomaly::Anomaly;

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

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}
