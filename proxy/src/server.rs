//! Serving accepted connections, and draining them on shutdown: HTTP
//! connections finish their in-flight requests, tunnels run to their end,
//! both bounded by the drain timeout.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::body::ProxyBody;

/// Which HTTP versions a connection may speak.
#[derive(Debug, Clone, Copy)]
pub enum Versions {
    Http1,
    Http2,
    /// Detect HTTP/2 prior knowledge, else HTTP/1.1.
    Either,
}

/// Counts open connections and tunnels; the proxy waits for it to reach
/// zero on shutdown.
pub struct Drain {
    open: Arc<AtomicUsize>,
}

/// Cloned into every accept loop.
#[derive(Clone)]
pub struct DrainHandle {
    open: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
}

/// Held for as long as a connection or tunnel is open.
pub struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections on `listener` until `stop`, handing each to
/// `on_accept`. Accept errors (out of file descriptors) are logged and
/// retried after a pause rather than ending the listener.
pub async fn accept_until_stopped(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    what: &'static str,
    mut on_accept: impl FnMut(TcpStream, SocketAddr),
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => on_accept(stream, remote),
                Err(error) => {
                    tracing::warn!(%error, listener = what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = stopped(&mut stop) => return,
        }
    }
}

/// Resolves once `stop` is set (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Keeps a timer due within a second until `stop`. Tokio unparks its
/// driver (an eventfd write, then an extra `epoll_wait`) whenever a new
/// timer is due before the driver's planned wake-up; with no timer
/// pending, every request's timeout did that. With this one pending, a
/// timer a second or more away never comes first. It costs one wake-up a
/// second.
pub async fn keep_a_timer_due(mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopped(&mut stop) => return,
        }
    }
}

impl Drain {
    /// `stop` tells open HTTP connections to finish their requests and close.
    pub fn new(stop: watch::Receiver<bool>) -> (Self, DrainHandle) {
        let open = Arc::new(AtomicUsize::new(0));
        let handle = DrainHandle {
            open: open.clone(),
            stop,
        };
        (Self { open }, handle)
    }

    /// Waits for open connections to finish, for at most `limit`. Returns
    /// whether everything finished.
    pub async fn drain(self, limit: Duration) -> bool {
        let all = async {
            while self.open.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(limit, all).await.is_ok()
    }
}

impl DrainHandle {
    /// Held by a tunnel for as long as it runs.
    pub fn tunnel(&self) -> OpenGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenGuard(self.open.clone())
    }

    /// Serves HTTP on `io` with `handler`, in its own task.
    pub fn serve_http<Io, H, Fut>(&self, io: Io, versions: Versions, handler: H)
    where
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let service = service_fn(move |request| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler(request).await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        builder
            .http2()
            .timer(TokioTimer::new())
            .adaptive_window(true);
        let builder = match versions {
            Versions::Http1 => builder.http1_only(),
            Versions::Http2 => builder.http2_only(),
            Versions::Either => builder,
        };
        let guard = self.tunnel();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(guard);
        });
    }
}
