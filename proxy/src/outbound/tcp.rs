//! Opaque TCP on a service's dedicated port: one mTLS connection to an
//! endpoint per app connection, bytes copied both ways, one CLIENT span
//! per connection.

use std::sync::Arc;
use std::time::Instant;

use crate::balance::{self, Pick};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{Outbound, connect_tls, endpoint_attributes};
use crate::identity::ALPN_OPAQUE;
use crate::metrics::Direction;
use crate::routes::Destination;
use crate::server::{DrainHandle, accept_until_stopped};
use crate::telemetry::trace_context::{TraceContext, new_span_id};
use crate::telemetry::{ErrorSource, SpanInFlight};

impl Outbound {
    pub async fn serve_tcp(
        self: Arc<Self>,
        listener: TcpListener,
        port: u16,
        drain: DrainHandle,
        stop: watch::Receiver<bool>,
    ) {
        accept_until_stopped(listener, stop, "outbound tcp", |stream, _| {
            self.metrics.accepted("outbound_tcp");
            let outbound = self.clone();
            let Some(route) = self.routes.load().by_port(port).cloned() else {
                tracing::warn!(
                    port,
                    "no service routes this port any more; connection closed"
                );
                return;
            };
            let destination = route.destination().clone();
            let guard = drain.tunnel();
            tokio::spawn(async move {
                outbound.tunnel(stream, &destination).await;
                drop(guard);
            });
        })
        .await;
    }

    async fn tunnel(&self, mut app: TcpStream, destination: &Destination) {
        let _ = app.set_nodelay(true);
        self.metrics.tunnel(Direction::Outbound, &destination.name);
        let started = Instant::now();
        let mut span = SpanInFlight::start(
            &self.telemetry,
            false,
            "tcp".to_owned(),
            &TraceContext::start(),
            new_span_id(),
        );
        let endpoint = match balance::pick(destination, &[], started) {
            Pick::Endpoint(endpoint) => endpoint,
            Pick::NoEndpoints | Pick::BreakerOpen => {
                if let Some(mut span) = span {
                    span.fail(
                        ErrorSource::Internal,
                        format!("no endpoint of `{}` is available", destination.name),
                    );
                    span.finish();
                }
                return;
            }
        };
        let _in_flight = endpoint.load.start();
        if let Some(span) = span.as_mut() {
            span.string("network.transport", "tcp");
            endpoint_attributes(span, destination, &endpoint);
        }
        let connected =
            connect_tls(&self.identity, destination, endpoint.address, ALPN_OPAQUE).await;
        let now = Instant::now();
        if connected.is_ok() {
            endpoint.health.succeeded(&destination.outlier, now);
        } else {
            let ejected = destination.ejected(now);
            let total = destination.endpoints.len();
            endpoint
                .health
                .failed(&destination.outlier, now, ejected, total);
        }
        let result = match connected {
            Ok(mut upstream) => tokio::io::copy_bidirectional(&mut app, &mut upstream)
                .await
                .map_err(|e| (ErrorSource::Upstream, e.to_string())),
            Err(message) => Err((ErrorSource::Upstream, message)),
        };
        if let Some(mut span) = span {
            match result {
                Ok((sent, received)) => {
                    span.int("mesh.bytes.sent", sent as i64);
                    span.int("mesh.bytes.received", received as i64);
                }
                Err((source, message)) => span.fail(source, message),
            }
            span.finish();
        }
        tracing::trace!(seconds = started.elapsed().as_secs_f64(), "tunnel closed");
    }
}
