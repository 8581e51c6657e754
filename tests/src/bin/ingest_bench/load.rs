//! The load generator: sends payloads over OTLP/gRPC or OTLP/HTTP with a
//! fixed number of requests in flight, retrying overloaded refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use meshtwin_tests::otlp::{RawCodec, TRACE_EXPORT_PATH};

use super::Transport;

/// A request refused as overloaded is retried at most this often.
const MAX_RETRIES: u32 = 10_000;

/// Sends every payload with `concurrency` requests in flight; returns the
/// wall time and how many overloaded refusals were retried.
pub(crate) async fn send_all(
    endpoint: &str,
    transport: Transport,
    payloads: &[Bytes],
    concurrency: usize,
) -> (f64, u64) {
    let payloads = Arc::new(payloads.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (payloads, next, endpoint) = (payloads.clone(), next.clone(), endpoint.to_owned());
        tasks.spawn(async move {
            let mut sender = Sender::connect(&endpoint, transport).await;
            let mut retries = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(payload) = payloads.get(i) else {
                    break;
                };
                retries += sender.send(payload).await;
            }
            retries
        });
    }
    let mut retries = 0;
    while let Some(task) = tasks.join_next().await {
        retries += task.expect("sender task");
    }
    (started.elapsed().as_secs_f64(), retries)
}

enum Sender {
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
    Http(
        Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
        String,
    ),
}

impl Sender {
    async fn connect(endpoint: &str, transport: Transport) -> Self {
        match transport {
            Transport::Grpc => {
                let channel = tonic::transport::Channel::from_shared(endpoint.to_owned())
                    .expect("endpoint")
                    .initial_stream_window_size(2 * 1024 * 1024)
                    .initial_connection_window_size(8 * 1024 * 1024)
                    .connect()
                    .await
                    .expect("connect");
                Self::Grpc(tonic::client::Grpc::new(channel))
            }
            Transport::Http => Self::Http(
                Client::builder(TokioExecutor::new()).build_http(),
                format!("{endpoint}/v1/traces"),
            ),
        }
    }

    /// Sends one payload until it is accepted; returns the retries.
    async fn send(&mut self, payload: &Bytes) -> u64 {
        for retry in 0..MAX_RETRIES {
            let overloaded = match self {
                Self::Grpc(grpc) => {
                    grpc.ready().await.expect("ready");
                    let path = http::uri::PathAndQuery::from_static(TRACE_EXPORT_PATH);
                    match grpc
                        .unary(tonic::Request::new(payload.to_vec()), path, RawCodec)
                        .await
                    {
                        Ok(_) => false,
                        Err(status) if status.code() == tonic::Code::Unavailable => true,
                        Err(status) => panic!("export refused: {status:?}"),
                    }
                }
                Self::Http(client, url) => {
                    let request = http::Request::post(url.as_str())
                        .header("content-type", "application/x-protobuf")
                        .body(Full::new(payload.clone()))
                        .expect("request");
                    let response = client.request(request).await.expect("http export");
                    match response.status().as_u16() {
                        200 => false,
                        503 => true,
                        other => panic!("export refused with HTTP {other}"),
                    }
                }
            };
            if !overloaded {
                return u64::from(retry);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("a request was refused {MAX_RETRIES} times");
    }
}
