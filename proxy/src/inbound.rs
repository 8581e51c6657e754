//! The inbound side: terminates mTLS from peers' proxies, learns the
//! caller's verified identity from its certificate, and forwards to the
//! local app on loopback with that identity in a header. Plaintext is
//! refused unless the listener is permissive. Records a SERVER span per
//! request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use meshtwin_model::spiffe::SpiffeId;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::body::{ProxyBody, incoming};
use crate::forward::{
    is_grpc, next_hop_uri, pass_response, proxy_error, strip_hop_by_hop, take_upgrade,
};
use crate::identity::{ALPN_H2, ALPN_OPAQUE, Identity, spiffe_id_of};
use crate::metrics::{Direction, ProxyMetrics};
use crate::outbound::{http_attributes, span_name};
use crate::pool::Pool;
use crate::server::{DrainHandle, Versions, accept_until_stopped};
use crate::telemetry::trace_context::{TraceContext, new_span_id};
use crate::telemetry::{ErrorSource, SpanInFlight, Telemetry};

/// The verified caller identity, as the app receives it. Callers cannot
/// set it themselves: the inbound side always replaces it.
pub const CLIENT_ID_HEADER: &str = "meshtwin-client-id";

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

pub struct Inbound {
    pub identity: Arc<Identity>,
    pub telemetry: Arc<Telemetry>,
    pub metrics: Arc<ProxyMetrics>,
    pub app: SocketAddr,
    pub opaque_app: SocketAddr,
    pub permissive: bool,
    pub service: String,
    pub locality: Arc<str>,
    pub app_pool: Pool,
}

/// Who is calling, as far as this connection proves it.
#[derive(Clone)]
struct Caller {
    id: Option<Arc<CallerId>>,
    tls: bool,
}

/// A verified caller identity in the forms each request needs, made once
/// per connection.
struct CallerId {
    text: Arc<str>,
    service: Arc<str>,
    header: Option<HeaderValue>,
}

impl CallerId {
    fn new(id: &SpiffeId) -> Self {
        let text = id.to_string();
        Self {
            header: HeaderValue::from_str(&text).ok(),
            text: text.into(),
            service: id.service().into(),
        }
    }
}

impl Inbound {
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        drain: DrainHandle,
        stop: watch::Receiver<bool>,
    ) {
        let acceptor = match self.identity.server_config() {
            Ok(config) => TlsAcceptor::from(config),
            Err(error) => {
                tracing::error!(%error, "cannot build the inbound TLS config; inbound is off");
                return;
            }
        };
        accept_until_stopped(listener, stop, "inbound", |stream, remote| {
            self.metrics.accepted("inbound");
            let inbound = self.clone();
            let acceptor = acceptor.clone();
            let drain = drain.clone();
            tokio::spawn(async move {
                if let Err(reason) = inbound.accept(stream, &acceptor, &drain).await {
                    inbound.metrics.refused(reason);
                    tracing::debug!(%remote, reason, "inbound connection refused");
                }
            });
        })
        .await;
    }

    async fn accept(
        self: &Arc<Self>,
        stream: TcpStream,
        acceptor: &TlsAcceptor,
        drain: &DrainHandle,
    ) -> Result<(), &'static str> {
        let _ = stream.set_nodelay(true);
        let mut first = [0u8; 1];
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
            Ok(Ok(1)) => {}
            Ok(_) => return Ok(()), // closed before sending anything
            Err(_) => return Err("timeout"),
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            if !self.permissive {
                return Err("plaintext");
            }
            let inbound = self.clone();
            let caller = Caller {
                id: None,
                tls: false,
            };
            drain.serve_http(stream, Versions::Either, move |request| {
                inbound.clone().handle(caller.clone(), request)
            });
            return Ok(());
        }
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::info!(%error, "inbound mTLS handshake failed");
                return Err("tls_handshake");
            }
            Err(_) => return Err("timeout"),
        };
        let (_, connection) = tls.get_ref();
        let id = connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(spiffe_id_of)
            .map(Arc::new);
        let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
        if alpn.as_deref() == Some(ALPN_OPAQUE) {
            let guard = drain.tunnel();
            let inbound = self.clone();
            tokio::spawn(async move {
                inbound.tunnel(tls, id).await;
                drop(guard);
            });
            return Ok(());
        }
        let versions = if alpn.as_deref() == Some(ALPN_H2) {
            Versions::Http2
        } else {
            Versions::Http1
        };
        let inbound = self.clone();
        let id = id.map(|id| Arc::new(CallerId::new(&id)));
        let caller = Caller { id, tls: true };
        drain.serve_http(tls, versions, move |request| {
            inbound.clone().handle(caller.clone(), request)
        });
        Ok(())
    }

    async fn handle(
        self: Arc<Self>,
        caller: Caller,
        mut request: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let grpc = is_grpc(&request);
        let context = TraceContext::from_headers(request.headers());
        let span_id = new_span_id();
        let name = span_name(&request, grpc);
        let mut span = SpanInFlight::start(&self.telemetry, true, name, &context, span_id);
        if let Some(span) = span.as_mut() {
            context.propagate(span_id, request.headers_mut());
            http_attributes(span, &request, grpc);
            span.flag("mesh.tls", caller.tls);
            span.string("mesh.locality", &self.locality);
            if let Some(id) = &caller.id {
                span.string("mesh.peer.identity", &id.text);
                span.string("client.service", &id.service);
            }
        }
        let headers = request.headers_mut();
        headers.remove(CLIENT_ID_HEADER);
        if let Some(value) = caller.id.as_ref().and_then(|id| id.header.clone()) {
            headers.insert(CLIENT_ID_HEADER, value);
        }
        let upgrade = take_upgrade(&mut request);
        strip_hop_by_hop(request.headers_mut(), upgrade.is_some());
        let http2 = request.version() == Version::HTTP_2;
        *request.uri_mut() = next_hop_uri(&request);
        let request = request.map(incoming);
        let app = self.app;
        let result = self
            .app_pool
            .send(request, http2, || connect_app(app))
            .await;
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let seconds = started.elapsed().as_secs_f64();
                self.metrics
                    .request(Direction::Inbound, &self.service, status, seconds);
                pass_response(response, span, upgrade)
            }
            Err(error) => {
                let message = format!("local app at {app}: {error}");
                tracing::debug!(%message, "inbound request failed");
                if let Some(mut span) = span {
                    span.http_status(502);
                    span.fail(ErrorSource::Upstream, message.clone());
                    span.finish();
                }
                self.metrics.request(
                    Direction::Inbound,
                    &self.service,
                    502,
                    started.elapsed().as_secs_f64(),
                );
                proxy_error(StatusCode::BAD_GATEWAY, &message)
            }
        }
    }

    async fn tunnel(
        &self,
        mut peer: tokio_rustls::server::TlsStream<TcpStream>,
        caller: Option<Arc<SpiffeId>>,
    ) {
        self.metrics.tunnel(Direction::Inbound, &self.service);
        let mut span = SpanInFlight::start(
            &self.telemetry,
            true,
            "tcp".to_owned(),
            &TraceContext::start(),
            new_span_id(),
        );
        if let (Some(span), Some(id)) = (span.as_mut(), &caller) {
            span.string("network.transport", "tcp");
            span.string("mesh.peer.identity", id.to_string());
            span.flag("mesh.tls", true);
        }
        let result = match connect_app(self.opaque_app).await {
            Ok(mut app) => tokio::io::copy_bidirectional(&mut peer, &mut app)
                .await
                .map_err(|e| e.to_string()),
            Err(message) => Err(message),
        };
        if let Some(mut span) = span {
            if let Err(message) = result {
                span.fail(ErrorSource::Upstream, message);
            }
            span.finish();
        }
    }
}

async fn connect_app(app: SocketAddr) -> Result<TcpStream, String> {
    let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(app))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
