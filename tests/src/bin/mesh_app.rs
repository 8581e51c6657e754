//! `mesh-app`: a small service for proxy tests. It listens for HTTP/1.1
//! and HTTP/2 on one port and, optionally, TCP echo on another, and prints
//! `http: ADDR` / `tcp: ADDR`. Routes:
//! - `/echo` (default): JSON of what arrived — version, method, path, the
//!   caller identity and trace headers, body length;
//! - `/status/NNN`: that status;
//! - `/delay/MS`: answers after MS milliseconds;
//! - `/upgrade` with `Upgrade:`: switches protocols and echoes bytes;
//! - `application/grpc`: echoes each message back, then trailers
//!   `grpc-status` (from the `x-grpc-status` header, default 0).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Parser)]
struct Args {
    /// Name reported in every answer.
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "127.0.0.1:0")]
    http: String,
    /// Also echo raw TCP here.
    #[arg(long)]
    tcp: Option<String>,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

async fn handle(
    name: String,
    mut request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_owned();
    let is_grpc = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if is_grpc {
        return Ok(grpc_echo(request).await);
    }
    if path == "/upgrade" && request.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 4096];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(full(""))
            .expect("valid response");
        return Ok(response);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let status = code.parse().ok().and_then(|c| StatusCode::from_u16(c).ok());
        let mut response = Response::new(full(format!("{name} answers {code}\n")));
        *response.status_mut() = status.unwrap_or(StatusCode::BAD_REQUEST);
        return Ok(response);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (client_id, traceparent) = (header("meshtwin-client-id"), header("traceparent"));
    let version = format!("{:?}", request.version());
    let method = request.method().to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = serde_json::json!({
        "app": name,
        "version": version,
        "method": method,
        "path": path,
        "client_id": client_id,
        "traceparent": traceparent,
        "body_bytes": body.len(),
    });
    let mut response = Response::new(full(answer.to_string()));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("static"));
    Ok(response)
}

/// Echoes every gRPC message, then sends the trailers.
async fn grpc_echo(request: Request<Incoming>) -> Response<Body> {
    let status = request
        .headers()
        .get("x-grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_owned();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    let mut body = request.into_body();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data()
                && tx.send(Ok(Frame::data(data))).await.is_err()
            {
                return;
            }
        }
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", status.parse().expect("digits"));
        let _ = tx.send(Ok(Frame::trailers(trailers))).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(stream).boxed_unsync())
        .expect("valid response")
}

async fn tcp_echo(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let (mut read, mut write) = stream.split();
            let _ = tokio::io::copy(&mut read, &mut write).await;
        });
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = TcpListener::bind(&args.http).await.expect("bind http");
    println!("http: {}", listener.local_addr().expect("address"));
    if let Some(tcp) = &args.tcp {
        let tcp = TcpListener::bind(tcp).await.expect("bind tcp");
        println!("tcp: {}", tcp.local_addr().expect("address"));
        tokio::spawn(tcp_echo(tcp));
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let name = args.name.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(name.clone(), request));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
