//! Two apps, each behind a real `meshtwin-proxy`, with certificates from a
//! real `meshtwin serve`: HTTP/1.1, HTTP/2, gRPC, upgrades and TCP cross
//! the mesh over mTLS; spans reach the collector and the twin.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshtwin_tests::client;
use meshtwin_tests::mesh::{
    MeshProxy, Pair, ProxySpec, Spawned, call, free_port, one_endpoint, start_app,
};
use meshtwin_tests::sandbox::{Meshtwin, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PAYMENTS_ID: &str = "spiffe://meshtwin.local/ns/default/sa/payments";
const LEDGER_ID: &str = "spiffe://meshtwin.local/ns/default/sa/ledger";

/// payments (A) and ledger (B), each with an app and a proxy that can call
/// the other; ledger also serves TCP echo, reachable from A on `tcp_port`.
struct Mesh {
    control_plane: Meshtwin,
    _apps: (Spawned, Spawned),
    a: MeshProxy,
    b: MeshProxy,
    tcp_port: u16,
}

impl Mesh {
    async fn start(control_plane: Meshtwin) -> Self {
        let ca = control_plane.data_dir().join("ca.pem");
        let app_a = start_app("payments", false);
        let app_b = start_app("ledger", true);
        let (inbound_a, inbound_b, tcp_port) = (free_port(), free_port(), free_port());
        let mut spec_b = ProxySpec::new(
            "ledger",
            &control_plane.control,
            &control_plane.otlp_grpc,
            &ca,
        );
        spec_b.app = Some(app_b.address("http"));
        spec_b.opaque_app = Some(app_b.address("tcp"));
        spec_b.inbound_port = inbound_b;
        spec_b
            .services
            .push(one_endpoint("payments", "http", None, inbound_a));
        let mut spec_a = ProxySpec::new(
            "payments",
            &control_plane.control,
            &control_plane.otlp_grpc,
            &ca,
        );
        spec_a.app = Some(app_a.address("http"));
        spec_a.inbound_port = inbound_a;
        spec_a
            .services
            .push(one_endpoint("ledger", "http", None, inbound_b));
        // ledger's TCP port: the same identity, routed by a local port.
        spec_a
            .services
            .push(one_endpoint("ledger", "tcp", Some(tcp_port), inbound_b));
        let b = MeshProxy::start(&spec_b).await;
        let a = MeshProxy::start(&spec_a).await;
        Self {
            control_plane,
            _apps: (app_a, app_b),
            a,
            b,
            tcp_port,
        }
    }
}

async fn raw_exchange(address: std::net::SocketAddr, request: &[u8], until: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    exchange_on(&mut stream, request, until).await
}

/// Writes `request` and reads until `until` appears (or the peer closes).
async fn exchange_on(stream: &mut TcpStream, request: &[u8], until: &[u8]) -> String {
    stream.write_all(request).await.expect("write");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        let stream = &mut *stream;
        while !seen.windows(until.len()).any(|w| w == until) {
            // A reset counts as closed: a refusing peer resets.
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("answer in time");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn http1_http2_grpc_upgrades_and_tcp_cross_the_mesh() {
    let mesh = Mesh::start(Meshtwin::serve(&[])).await;

    // HTTP/1.1 both ways, with the caller's verified identity.
    let reply = call(mesh.a.outbound, "ledger", "/echo").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let echo = reply.json();
    assert_eq!(echo["app"], "ledger");
    assert_eq!(echo["client_id"], PAYMENTS_ID);
    assert_eq!(echo["version"], "HTTP/1.1");
    let reply = call(mesh.b.outbound, "payments", "/echo").await;
    assert_eq!(reply.json()["client_id"], LEDGER_ID);

    // Keep-alive and chunked bodies: two requests on one connection.
    let mut stream = TcpStream::connect(mesh.a.outbound).await.expect("connect");
    let chunked = b"POST /echo HTTP/1.1\r\nhost: ledger\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let answer = exchange_on(&mut stream, chunked, b"HTTP/1.1\"}").await;
    assert!(answer.contains("\"body_bytes\":11"), "{answer}");
    let answer = exchange_on(
        &mut stream,
        b"GET /status/204 HTTP/1.1\r\nhost: ledger\r\n\r\n",
        b"\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");

    // An upgrade: 101, then bytes both ways.
    let mut stream = TcpStream::connect(mesh.a.outbound).await.expect("connect");
    stream
        .write_all(b"GET /upgrade HTTP/1.1\r\nhost: ledger\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut head))
        .await
        .expect("101 in time")
        .expect("read");
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    stream
        .write_all(b"through the upgrade")
        .await
        .expect("write");
    let mut echoed = vec![0u8; 19];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut echoed))
        .await
        .expect("echo in time")
        .expect("read");
    assert_eq!(&echoed, b"through the upgrade");

    // HTTP/2 with prior knowledge, and gRPC streaming with trailers.
    let io = TokioIo::new(TcpStream::connect(mesh.a.outbound).await.expect("connect"));
    let (mut h2, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .expect("h2 handshake");
    tokio::spawn(connection);
    let request = http::Request::get("http://ledger/echo")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = h2.send_request(request).await.expect("h2 response");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let echo: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (echo["version"].as_str(), echo["client_id"].as_str()),
        (Some("HTTP/2.0"), Some(PAYMENTS_ID))
    );

    for (status, expected) in [(None, "0"), (Some("14"), "14")] {
        let (tx, rx) =
            tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::convert::Infallible>>(4);
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
            );
        let mut request = http::Request::post("http://ledger/test.Echo/Stream")
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(status) = status {
            request = request.header("x-grpc-status", status);
        }
        let request = request
            .body(StreamBody::new(Box::pin(stream)))
            .expect("request");
        let (io, connection) = {
            let io = TokioIo::new(TcpStream::connect(mesh.a.outbound).await.expect("connect"));
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("h2 handshake")
        };
        tokio::spawn(connection);
        let mut sender = io;
        let response = tokio::spawn(async move { sender.send_request(request).await });
        for message in [
            &b"\0\0\0\0\x03one"[..],
            b"\0\0\0\0\x03two",
            b"\0\0\0\0\x05three",
        ] {
            tx.send(Ok(Frame::data(Bytes::copy_from_slice(message))))
                .await
                .expect("send frame");
        }
        drop(tx);
        let response = response.await.expect("join").expect("grpc response");
        let collected = response.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["grpc-status"], expected);
        assert_eq!(collected.to_bytes().len(), 3 * 5 + 3 + 3 + 5);
    }

    // Opaque TCP on the service's own port.
    let answer = raw_exchange(
        ([127, 0, 0, 1], mesh.tcp_port).into(),
        b"ping over tcp",
        b"ping over tcp",
    )
    .await;
    assert_eq!(answer, "ping over tcp");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_request_gives_one_trace_and_an_mtls_edge_in_the_twin() {
    let mesh = Mesh::start(Meshtwin::serve(&[])).await;
    let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let reply = client::request(
        http::Method::GET,
        &format!("http://{}/echo", mesh.a.outbound),
        &[("host", "ledger"), ("traceparent", parent)],
        vec![],
    )
    .await;
    let seen = reply.json()["traceparent"]
        .as_str()
        .expect("traceparent reached the app")
        .to_owned();
    assert!(
        seen.starts_with("00-0af7651916cd43dd8448eb211c80319c-"),
        "{seen}"
    );
    assert!(
        !seen.contains("b7ad6b7169203331"),
        "the app's parent is the server span, not the caller's"
    );

    let graph_url = format!("{}/api/v1/graph", mesh.control_plane.web);
    let edge = eventually(
        Duration::from_secs(15),
        "the payments -> ledger edge",
        || async {
            let graph = client::get(&graph_url).await.json();
            graph["edges"]
                .as_array()?
                .iter()
                .find(|e| e["id"] == "default/payments->default/ledger")
                .cloned()
        },
    )
    .await;
    assert_eq!(edge["total_requests"], 1, "{edge}");
    assert_eq!(edge["total_mtls"], 1, "{edge}");
    let window = &edge["windows"]["last_1m"];
    assert!(
        window["client_latency_ms"].is_object() && window["server_latency_ms"].is_object(),
        "client and server spans were paired: {edge}"
    );

    // RED metrics reach the collector as OTLP: from each proxy, a request
    // count and a duration histogram point.
    let collector_metrics = format!("{}/metrics", mesh.control_plane.web);
    let series = "meshtwin_collector_metric_points_received_total{transport=\"grpc\"}";
    eventually(Duration::from_secs(10), "4 metric points", || async {
        let points = client::metric(&client::get(&collector_metrics).await.text(), series)?;
        (points >= 4.0).then_some(())
    })
    .await;
    // A proxy counts its export when the answer arrives, just after the
    // collector counted the points.
    for proxy in [&mesh.a, &mesh.b] {
        eventually(
            Duration::from_secs(10),
            "an acknowledged metric export",
            || async {
                let page = proxy.metrics().await;
                let exports =
                    client::metric(&page, "meshtwin_proxy_metric_exports_total{result=\"ok\"}");
                (exports >= Some(1.0)).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_ca_wrong_identity_and_plaintext_are_refused() {
    let mesh = Mesh::start(Meshtwin::serve(&[])).await;
    let inbound_b = mesh.b.inbound.expect("ledger has an inbound side");

    // A proxy certified by another CA (trusting both, so that only the
    // ledger's side can refuse).
    let other = Meshtwin::serve(&[]);
    let bundle_dir = tempfile::tempdir().expect("temp dir");
    let bundle = bundle_dir.path().join("both.pem");
    let pem =
        |cp: &Meshtwin| std::fs::read_to_string(cp.data_dir().join("ca.pem")).expect("ca.pem");
    std::fs::write(&bundle, pem(&other) + &pem(&mesh.control_plane)).expect("write bundle");
    let mut spec = ProxySpec::new("payments", &other.control, &other.otlp_grpc, &bundle);
    spec.services
        .push(one_endpoint("ledger", "http", None, inbound_b.port()));
    // Expecting ledger at a proxy that is payments: a wrong identity.
    spec.services.push(one_endpoint(
        "audit",
        "http",
        None,
        mesh.a.inbound.expect("inbound").port(),
    ));
    let stranger = MeshProxy::start(&spec).await;
    let reply = call(stranger.outbound, "ledger", "/echo").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let refused = eventually(
        Duration::from_secs(5),
        "ledger to count the refusal",
        || async {
            client::metric(
                &mesh.b.metrics().await,
                "meshtwin_proxy_connections_refused_total{reason=\"tls_handshake\"}",
            )
            .filter(|n| *n >= 1.0)
        },
    )
    .await;
    assert!(refused >= 1.0);

    let reply = call(mesh.a.outbound, "ledger", "/echo").await;
    assert_eq!(reply.status, 200, "the mesh's own proxy is still accepted");
    let mut spec = ProxySpec::new(
        "payments",
        &mesh.control_plane.control,
        &mesh.control_plane.otlp_grpc,
        &mesh.control_plane.data_dir().join("ca.pem"),
    );
    spec.services
        .push(one_endpoint("audit", "http", None, inbound_b.port()));
    let confused = MeshProxy::start(&spec).await;
    let reply = call(confused.outbound, "audit", "/echo").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let reason = reply.headers["meshtwin-proxy-error"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        reason.contains(&format!(
            "peer is {LEDGER_ID}, expected spiffe://meshtwin.local/ns/default/sa/audit"
        )),
        "{reason}"
    );

    // Plaintext to an inbound that is not permissive: closed, counted.
    let answer = raw_exchange(
        inbound_b,
        b"GET /echo HTTP/1.1\r\nhost: ledger\r\n\r\n",
        b"\r\n\r\n",
    )
    .await;
    assert_eq!(answer, "", "plaintext got an answer");
    let plaintext = client::metric(
        &mesh.b.metrics().await,
        "meshtwin_proxy_connections_refused_total{reason=\"plaintext\"}",
    );
    assert_eq!(plaintext, Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_flow_with_the_collector_down_and_drops_are_counted() {
    let control_plane = Meshtwin::serve(&[]);
    let ca = control_plane.data_dir().join("ca.pem");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let Pair {
        a,
        app: _app,
        b: _b,
    } = Pair::start(&control_plane.control, &nowhere, &ca).await;
    for _ in 0..50 {
        let reply = call(a.outbound, "ledger", "/echo").await;
        assert_eq!(reply.status, 200);
    }
    let dropped = eventually(Duration::from_secs(15), "drops to be counted", || async {
        client::metric(
            &a.metrics().await,
            "meshtwin_proxy_spans_dropped_total{reason=\"export_failed\"}",
        )
        .filter(|n| *n >= 50.0)
    })
    .await;
    assert_eq!(
        dropped, 50.0,
        "every client span was dropped, none lost silently"
    );
}
