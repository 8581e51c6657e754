//! The admin port, on loopback: `/live` (the process runs), `/ready` (it
//! holds a certificate and can serve mTLS), `/metrics` (Prometheus).

use std::sync::Arc;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::body::{ProxyBody, full};
use crate::identity::Identity;
use crate::server::{DrainHandle, Versions, accept_until_stopped};

pub struct Admin {
    pub registry: Registry,
    pub identity: Arc<Identity>,
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<ProxyBody> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().expect("static"));
    response
}

impl Admin {
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        drain: DrainHandle,
        stop: watch::Receiver<bool>,
    ) {
        accept_until_stopped(listener, stop, "admin", |stream, _| {
            let admin = self.clone();
            drain.serve_http(stream, Versions::Http1, move |request| {
                let admin = admin.clone();
                async move { admin.handle(&request) }
            });
        })
        .await;
    }

    fn handle(&self, request: &Request<Incoming>) -> Response<ProxyBody> {
        const PLAIN: &str = "text/plain; charset=utf-8";
        match request.uri().path() {
            "/live" => text(StatusCode::OK, "live\n".to_owned(), PLAIN),
            "/ready" if self.identity.has_certificate() => {
                text(StatusCode::OK, "ready\n".to_owned(), PLAIN)
            }
            "/ready" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "waiting for a certificate from the control plane\n".to_owned(),
                PLAIN,
            ),
            "/metrics" => {
                self.identity.refresh_gauges();
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &self.registry) {
                    Ok(()) => text(
                        StatusCode::OK,
                        body,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                    Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, error.to_string(), PLAIN),
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /live, /ready or /metrics\n".to_owned(),
                PLAIN,
            ),
        }
    }
}
