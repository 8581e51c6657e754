//! A small HTTP/1.1 client for talking to `meshtwin` in tests.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Long enough for the store's answers on a busy machine: its query
/// threads run at the lowest CPU priority, so the tests running beside
/// one (a debug build's root-cause read takes about a second when idle)
/// stretch it many times over. A hang is still caught well within
/// nextest's limit.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one request with the given headers and body.
pub async fn request(method: Method, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder.body(Full::new(Bytes::from(body))).expect("request");
    let response = tokio::time::timeout(TIMEOUT, client.request(req))
        .await
        .unwrap_or_else(|_| panic!("{url} did not answer within {TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Reply {
    request(Method::GET, url, &[], Vec::new()).await
}

/// `POST` with a content type (and any further headers).
pub async fn post(url: &str, content_type: &str, extra: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut headers = vec![("content-type", content_type)];
    headers.extend_from_slice(extra);
    request(Method::POST, url, &headers, body).await
}

/// POSTs `body` as JSON: the status and the JSON answer.
pub async fn post_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let reply = post(url, "application/json", &[], body.to_string().into_bytes()).await;
    (reply.status.as_u16(), reply.json())
}

/// The value of an unlabelled or labelled sample in a Prometheus text page:
/// `name` is matched up to the value, e.g. `meshtwin_twin_spans_ingested_total`.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
}

/// Asks `{web}/api/v1/{path}` for each case and checks the status and
/// that the JSON `error` contains the message.
pub async fn assert_api_errors(web: &str, cases: &[(&str, u16, &str)]) {
    for &(path, status, message) in cases {
        let reply = get(&format!("{web}/api/v1/{path}")).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
        let error = reply.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(error.contains(message), "{path}: {error}");
    }
}
