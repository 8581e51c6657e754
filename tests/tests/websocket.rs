//! The websocket sends a snapshot, then deltas with contiguous versions;
//! new spans show up as new edges; applying the deltas reproduces the
//! REST snapshot.

use std::time::Duration;

use futures_util::StreamExt;
use meshtwin_model::delta::{StreamMessage, apply};
use meshtwin_model::graph::GraphSnapshot;
use meshtwin_tests::client::{get, post};
use meshtwin_tests::otlp::{calls, trace_id};
use meshtwin_tests::sandbox::Meshtwin;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Bounds every wait in this test.
const STEP: Duration = Duration::from_secs(10);

async fn next_message(socket: &mut Socket) -> StreamMessage {
    loop {
        let frame = tokio::time::timeout(STEP, socket.next())
            .await
            .expect("a message within the step")
            .expect("socket still open")
            .expect("a frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("a stream message");
        }
    }
}

/// Reads deltas, checking they are contiguous and applying them, until
/// `done` holds for the local graph (at most 200 messages).
async fn follow(
    socket: &mut Socket,
    graph: &mut GraphSnapshot,
    done: impl Fn(&GraphSnapshot) -> bool,
) {
    for _ in 0..200 {
        if done(graph) {
            return;
        }
        match next_message(socket).await {
            StreamMessage::Delta(delta) => {
                assert_eq!(delta.from_version, graph.version, "deltas are contiguous");
                assert_eq!(delta.to_version, delta.from_version + 1);
                apply(graph, &delta).expect("applies");
            }
            StreamMessage::Snapshot(snapshot) => {
                panic!("unexpected snapshot at {}", snapshot.version)
            }
            StreamMessage::Detections { .. } => {}
        }
    }
    panic!("condition not reached within 200 messages");
}

async fn send(meshtwin: &Meshtwin, client: &str, server: &str, series: u8) {
    let traces: Vec<[u8; 16]> = (0..5).map(|n| trace_id(series, n)).collect();
    let body = calls(client, server, &traces).encode_to_vec();
    let url = format!("{}/v1/traces", meshtwin.otlp_http);
    let reply = post(&url, "application/x-protobuf", &[], body).await;
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_then_contiguous_deltas_that_show_new_edges() {
    let meshtwin = Meshtwin::serve(&[]);
    let url = format!(
        "{}/api/v1/stream",
        meshtwin.web.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = connect_async(url.as_str())
        .await
        .expect("websocket connects");

    let StreamMessage::Snapshot(mut graph) = next_message(&mut socket).await else {
        panic!("the first message is a snapshot");
    };
    assert!(graph.edges.is_empty(), "a fresh twin is empty");

    send(&meshtwin, "alpha", "beta", 1).await;
    follow(&mut socket, &mut graph, |g| {
        g.edges.iter().any(|e| e.id == "alpha->beta")
    })
    .await;
    let edge = graph.edges.iter().find(|e| e.id == "alpha->beta").unwrap();
    assert_eq!(edge.total_requests, 5);

    send(&meshtwin, "beta", "gamma", 2).await;
    follow(&mut socket, &mut graph, |g| {
        g.edges.iter().any(|e| e.id == "beta->gamma")
    })
    .await;
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["alpha", "beta", "gamma"]);

    // The graph the deltas built is the graph REST serves at that version.
    let url = format!("{}/api/v1/graph", meshtwin.web);
    for _ in 0..100 {
        let rest: GraphSnapshot = serde_json::from_value(get(&url).await.json()).unwrap();
        if rest.version == graph.version {
            assert_eq!(rest, graph);
            return;
        }
        if rest.version > graph.version {
            follow(&mut socket, &mut graph, |g| g.version >= rest.version).await;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("REST and the stream never met at one version");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_connects_later_gets_the_current_graph_as_its_snapshot() {
    let meshtwin = Meshtwin::serve(&[]);
    send(&meshtwin, "early", "bird", 3).await;
    let graph_url = format!("{}/api/v1/graph", meshtwin.web);
    meshtwin_tests::sandbox::eventually(STEP, "the edge in REST", || async {
        let graph: GraphSnapshot = serde_json::from_value(get(&graph_url).await.json()).ok()?;
        (!graph.edges.is_empty()).then_some(())
    })
    .await;
    let url = format!(
        "{}/api/v1/stream",
        meshtwin.web.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = connect_async(url.as_str())
        .await
        .expect("websocket connects");
    let StreamMessage::Snapshot(graph) = next_message(&mut socket).await else {
        panic!("the first message is a snapshot");
    };
    assert_eq!(graph.edges.len(), 1);
    assert_eq!(graph.edges[0].id, "early->bird");
    assert!(graph.version >= 1);
}
