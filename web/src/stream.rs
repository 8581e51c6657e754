//! The websocket `/api/v1/stream`: a snapshot on connect (followed by the
//! latest alarms and the incidents), then deltas (with the alarms raised
//! and the incidents changed since the last).
//!
//! Every delta carries `from_version` and `to_version`; the client applies
//! it only to a snapshot at `from_version`. A client that falls behind the
//! broadcast backlog, or would otherwise see a gap, is sent a fresh
//! snapshot instead. A client that does not read for `SEND_TIMEOUT` is
//! disconnected, so a stuck browser never holds the twin back.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use meshtwin_model::anomaly::Anomaly;
use meshtwin_model::delta::GraphDelta;
use meshtwin_model::graph::GraphSnapshot;
use meshtwin_model::incident::Incident;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::WebState;

const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The wire form of `meshtwin_model::delta::StreamMessage`, borrowed so
/// one shared snapshot or delta is not cloned per client.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Outgoing<'a> {
    Snapshot(&'a GraphSnapshot),
    Detections {
        anomalies: &'a [Anomaly],
        incidents: &'a [Incident],
    },
    Delta(&'a GraphDelta),
}

pub(crate) async fn upgrade(ws: WebSocketUpgrade, State(state): State<WebState>) -> Response {
    ws.on_upgrade(move |socket| run(socket, state))
}

async fn run(mut socket: WebSocket, state: WebState) {
    state.metrics.stream_opened();
    let mut deltas = state.deltas.subscribe();
    let mut version = match send_snapshot(&mut socket, &state).await {
        Some(version) => version,
        None => return state.metrics.stream_closed(),
    };
    loop {
        let next = tokio::select! {
            delta = deltas.recv() => delta,
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => continue,
            },
        };
        let sent = match next_step(version, next) {
            Step::Skip => continue,
            Step::Stop => break,
            Step::Delta(delta) => send(&mut socket, &Outgoing::Delta(&delta))
                .await
                .then_some(delta.to_version),
            Step::Snapshot { lagged } => {
                if lagged {
                    state.metrics.stream_lagged();
                }
                send_snapshot(&mut socket, &state).await
            }
        };
        match sent {
            Some(sent) => version = sent,
            None => break,
        }
    }
    state.metrics.stream_closed();
}

/// What to send a client that holds `version`, given the next broadcast.
#[derive(Debug, PartialEq)]
enum Step {
    /// The client already has it (deltas published before it connected).
    Skip,
    /// It continues the client's version.
    Delta(Arc<GraphDelta>),
    /// A gap or a lag: the client needs the whole graph again.
    Snapshot { lagged: bool },
    /// The twin is gone.
    Stop,
}

fn next_step(version: u64, next: Result<Arc<GraphDelta>, RecvError>) -> Step {
    match next {
        Ok(delta) if delta.to_version <= version => Step::Skip,
        Ok(delta) if delta.from_version == version => Step::Delta(delta),
        Ok(_) => Step::Snapshot { lagged: false },
        Err(RecvError::Lagged(_)) => Step::Snapshot { lagged: true },
        Err(RecvError::Closed) => Step::Stop,
    }
}

/// Sends the latest snapshot, then the latest alarms and the incidents;
/// returns the snapshot's version, or None if the client is gone.
async fn send_snapshot(socket: &mut WebSocket, state: &WebState) -> Option<u64> {
    let (snapshot, anomalies, incidents) = {
        let view = state.view.borrow();
        (
            view.snapshot.clone(),
            view.anomalies.clone(),
            view.incidents.clone(),
        )
    };
    let detections = Outgoing::Detections {
        anomalies: &anomalies,
        incidents: &incidents,
    };
    let sent =
        send(socket, &Outgoing::Snapshot(&snapshot)).await && send(socket, &detections).await;
    sent.then_some(snapshot.version)
}

async fn send(socket: &mut WebSocket, message: &Outgoing<'_>) -> bool {
    let text = match serde_json::to_string(message) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(%error, "cannot encode stream message");
            return false;
        }
    };
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(from: u64, to: u64) -> Result<Arc<GraphDelta>, RecvError> {
        Ok(Arc::new(GraphDelta {
            from_version: from,
            to_version: to,
            ..GraphDelta::default()
        }))
    }

    #[test]
    fn deltas_continue_the_clients_version_or_a_snapshot_replaces_them() {
        assert_eq!(
            next_step(5, delta(4, 5)),
            Step::Skip,
            "already in the snapshot"
        );
        assert!(matches!(next_step(5, delta(5, 6)), Step::Delta(d) if d.to_version == 6));
        assert_eq!(
            next_step(5, delta(7, 8)),
            Step::Snapshot { lagged: false },
            "a gap"
        );
        assert_eq!(
            next_step(5, Err(RecvError::Lagged(3))),
            Step::Snapshot { lagged: true }
        );
        assert_eq!(next_step(5, Err(RecvError::Closed)), Step::Stop);
    }
}
