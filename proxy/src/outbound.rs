//! The outbound side: the local app sends plaintext here; the proxy picks
//! the destination (by `Host`/`:authority`, or by the local port),
//! chooses an endpoint, and originates mTLS to that endpoint's inbound
//! proxy, verifying it is the destination's identity. Records a CLIENT
//! span per request.

mod attempts;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::body::ProxyBody;
use crate::config::Protocol;
use crate::forward::{
    is_grpc, next_hop_uri, pass_response, proxy_error, request_host, strip_hop_by_hop, take_upgrade,
};
use crate::identity::{ALPN_H2, ALPN_HTTP1, Identity, WrongIdentity};
use crate::metrics::{Direction, ProxyMetrics};
use crate::routes::{Destination, Endpoint, Routes};
use crate::server::{DrainHandle, Versions, accept_until_stopped};
use crate::telemetry::trace_context::{TraceContext, new_span_id};
use crate::telemetry::{SpanInFlight, Telemetry, Text};

use attempts::{AttemptError, Failure};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Outbound {
    /// Swapped whole when the control plane sends new routes.
    pub routes: Arc<ArcSwap<Routes>>,
    pub identity: Arc<Identity>,
    pub telemetry: Arc<Telemetry>,
    pub metrics: Arc<ProxyMetrics>,
}

/// Connects to an endpoint's inbound proxy with mTLS, expecting the
/// destination's identity.
pub(crate) async fn connect_tls(
    identity: &Identity,
    destination: &Destination,
    address: SocketAddr,
    alpn: &'static [u8],
) -> Result<TlsStream<TcpStream>, String> {
    let config = identity
        .client_config(&destination.id, alpn)
        .map_err(|e| format!("tls config: {e}"))?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| format!("connect to {address} timed out"))?
        .map_err(|e| format!("connect to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    TlsConnector::from(config)
        .connect(ServerName::IpAddress(address.ip().into()), tcp)
        .await
        .map_err(|e| format!("mTLS with {address}: {}", describe_tls_error(&e)))
}

/// A handshake failure in words: a wrong peer identity says whom it found.
fn describe_tls_error(error: &std::io::Error) -> String {
    let wrong = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|tls| match tls {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => other
                .0
                .downcast_ref::<WrongIdentity>()
                .map(ToString::to_string),
            _ => None,
        });
    wrong.unwrap_or_else(|| error.to_string())
}

/// gRPC spans are named `package.Service/Method`, HTTP spans by method.
pub(crate) fn span_name<B>(request: &Request<B>, grpc: bool) -> String {
    if grpc {
        request.uri().path().trim_start_matches('/').to_owned()
    } else {
        request.method().as_str().to_owned()
    }
}

/// The method as span text: a literal for the standard ones.
fn method_text(method: &Method) -> Text {
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    STANDARD
        .iter()
        .find(|(standard, _)| standard == method)
        .map_or_else(
            || Text::Owned(method.as_str().to_owned()),
            |(_, text)| Text::Static(text),
        )
}

/// Semantic-convention attributes common to both sides.
pub(crate) fn http_attributes<B>(span: &mut SpanInFlight, request: &Request<B>, grpc: bool) {
    span.string("http.request.method", method_text(request.method()));
    span.string("url.path", request.uri().path().to_owned());
    span.string("network.protocol.name", "http");
    let version = match request.version() {
        Version::HTTP_2 => "2",
        Version::HTTP_10 => "1.0",
        _ => "1.1",
    };
    span.string("network.protocol.version", version);
    if grpc
        && let Some((service, method)) =
            request.uri().path().trim_start_matches('/').split_once('/')
    {
        span.string("rpc.system", "grpc");
        span.string("rpc.service", service.to_owned());
        span.string("rpc.method", method.to_owned());
    }
}

/// Where a call went: the destination, the endpoint, and what its
/// certificate proved.
pub(crate) fn endpoint_attributes(
    span: &mut SpanInFlight,
    destination: &Destination,
    endpoint: &Endpoint,
) {
    span.string("server.address", &destination.name);
    span.string("peer.service", &destination.name);
    span.string("mesh.endpoint", &endpoint.address_text);
    span.string("mesh.locality", &endpoint.locality);
    span.string("mesh.peer.identity", &destination.id_text);
    span.flag("mesh.tls", true);
}

impl Outbound {
    /// Accepts app connections on `listener`; `fixed` is the port of a
    /// service with its own port, else the `Host` decides.
    pub async fn serve_http(
        self: Arc<Self>,
        listener: TcpListener,
        fixed: Option<u16>,
        drain: DrainHandle,
        stop: watch::Receiver<bool>,
    ) {
        accept_until_stopped(listener, stop, "outbound", |stream, _| {
            self.metrics.accepted("outbound");
            let _ = stream.set_nodelay(true);
            let outbound = self.clone();
            drain.serve_http(stream, Versions::Either, move |request| {
                outbound.clone().handle(fixed, request)
            });
        })
        .await;
    }

    async fn handle(
        self: Arc<Self>,
        fixed: Option<u16>,
        mut request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let host = request_host(&request);
        let routes = self.routes.load();
        let route = match fixed {
            Some(port) => routes.by_port(port).cloned(),
            None => host.as_deref().and_then(|h| routes.by_host(h).cloned()),
        };
        drop(routes);
        let Some(route) = route.filter(|r| r.protocol == Protocol::Http) else {
            let host = host.unwrap_or_default();
            self.metrics.request(
                Direction::Outbound,
                "",
                502,
                started.elapsed().as_secs_f64(),
            );
            return proxy_error(
                StatusCode::BAD_GATEWAY,
                &format!("no route for host `{host}`"),
            );
        };
        let destination = route.destination().clone();
        let grpc = is_grpc(&request);
        let context = TraceContext::from_headers(request.headers());
        let span_id = new_span_id();
        let mut span = SpanInFlight::start(
            &self.telemetry,
            false,
            span_name(&request, grpc),
            &context,
            span_id,
        );
        if let Some(span) = span.as_mut() {
            context.propagate(span_id, request.headers_mut());
            http_attributes(span, &request, grpc);
        }
        let upgrade = take_upgrade(&mut request);
        strip_hop_by_hop(request.headers_mut(), upgrade.is_some());
        *request.uri_mut() = next_hop_uri(&request);
        let outcome = self
            .send_with_retries(&destination, request, grpc, upgrade.is_some())
            .await;
        if let Some(span) = span.as_mut() {
            if let Some(endpoint) = &outcome.endpoint {
                endpoint_attributes(span, &destination, endpoint);
            }
            span.int("mesh.retry.attempt", i64::from(outcome.attempt));
            if let Some(fault) = outcome.fault {
                span.string("mesh.fault.injected", fault);
            }
            // Resilience events, which root-cause ranking reads as mesh
            // signals against the callee; only on requests that had them.
            if outcome.ejections > 0 {
                span.int("mesh.endpoint.ejections", i64::from(outcome.ejections));
            }
            if outcome.breaker_open {
                span.string("mesh.breaker", "open");
            }
        }
        match outcome.result {
            Ok(response) => {
                let status = response.status().as_u16();
                let seconds = started.elapsed().as_secs_f64();
                self.metrics
                    .request(Direction::Outbound, &destination.name, status, seconds);
                pass_response(response, span, upgrade)
            }
            Err(failure) => self.fail(span, &destination, started, failure),
        }
    }

    async fn send(
        &self,
        destination: &Destination,
        endpoint: &Endpoint,
        request: Request<ProxyBody>,
        http2: bool,
    ) -> Result<Response<Incoming>, AttemptError> {
        let alpn = if http2 { ALPN_H2 } else { ALPN_HTTP1 };
        endpoint
            .pool
            .send(request, http2, || {
                connect_tls(&self.identity, destination, endpoint.address, alpn)
            })
            .await
            .map_err(|e| {
                let message = format!("{} at {}: {e}", destination.name, endpoint.address);
                AttemptError::Send(message, e)
            })
    }

    fn fail(
        &self,
        span: Option<SpanInFlight>,
        destination: &Destination,
        started: Instant,
        failure: Failure,
    ) -> Response<ProxyBody> {
        let Failure {
            status,
            source,
            message,
        } = failure;
        tracing::debug!(service = %destination.name, %message, "outbound request failed");
        if let Some(mut span) = span {
            span.http_status(status.as_u16());
            span.fail(source, message.clone());
            span.finish();
        }
        self.metrics.request(
            Direction::Outbound,
            &destination.name,
            status.as_u16(),
            started.elapsed().as_secs_f64(),
        );
        proxy_error(status, &message)
    }
}
