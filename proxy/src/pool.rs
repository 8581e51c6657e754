//! Connections to one endpoint, reused across requests: idle HTTP/1.1
//! connections on a stack, one multiplexed HTTP/2 connection per serving
//! thread. Each proxy owns its pools so that balancing, ejection and
//! breakers decide per request which endpoint — and so which pool — a
//! request uses. A connection is driven by the thread that made it and
//! used only by that thread ([`crate::shard`]), so a response never needs
//! a wake-up across threads.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::body::ProxyBody;
use crate::shard;

/// Idle HTTP/1.1 connections kept per endpoint.
const MAX_IDLE_HTTP1: usize = 128;

/// Why a request did not get a response from the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: nothing was sent, a retry is safe.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connection failed while the request was in flight.
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

#[derive(Default)]
pub struct Pool {
    /// Idle connections, each with the shard that made it.
    http1: Mutex<Vec<(usize, http1::SendRequest<ProxyBody>)>>,
    /// One connection per shard, indexed by shard.
    http2: Mutex<Vec<Option<http2::SendRequest<ProxyBody>>>>,
    /// Requests waiting for a connection to be made.
    pending: AtomicUsize,
}

/// Counts a request as waiting for a connection until dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    fn wait(&self) -> Waiting<'_> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.pending)
    }

    async fn dial<F, Fut, Io>(&self, dial: F) -> Result<Io, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Io, String>>,
    {
        let _waiting = self.wait();
        dial().await.map_err(SendError::Connect)
    }

    /// Sends `request` on a pooled connection, dialing one with `dial`
    /// when none is free. `http2` picks the protocol.
    pub async fn send<F, Fut, Io>(
        &self,
        request: Request<ProxyBody>,
        http2: bool,
        dial: F,
    ) -> Result<Response<Incoming>, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Io, String>>,
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if http2 {
            self.send_http2(request, dial).await
        } else {
            self.send_http1(request, dial).await
        }
    }

    async fn send_http1<F, Fut, Io>(
        &self,
        mut request: Request<ProxyBody>,
        dial: F,
    ) -> Result<Response<Incoming>, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Io, String>>,
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // An idle connection may have been closed by the peer since it was
        // checked; try_send_request hands the request back in that case.
        while let Some(mut sender) = self.idle_http1() {
            let response = sender.try_send_request(request);
            self.put_back_http1(sender);
            match response.await {
                Ok(response) => return Ok(response),
                Err(mut error) => match error.take_message() {
                    Some(returned) => request = returned,
                    None => return Err(SendError::Http(error.into_error())),
                },
            }
        }
        let io = self.dial(dial).await?;
        let (mut sender, connection) = http1::Builder::new().handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "http/1.1 connection ended");
            }
        });
        let response = sender.send_request(request);
        self.put_back_http1(sender);
        Ok(response.await?)
    }

    fn idle_http1(&self) -> Option<http1::SendRequest<ProxyBody>> {
        let here = shard::current();
        let mut idle = self.http1.lock().expect("pool lock");
        idle.retain(|(_, sender)| !sender.is_closed());
        let ready = idle
            .iter()
            .rposition(|(shard, sender)| *shard == here && sender.is_ready())?;
        Some(idle.swap_remove(ready).1)
    }

    fn put_back_http1(&self, sender: http1::SendRequest<ProxyBody>) {
        let mut idle = self.http1.lock().expect("pool lock");
        if idle.len() < MAX_IDLE_HTTP1 {
            idle.push((shard::current(), sender));
        }
    }

    async fn send_http2<F, Fut, Io>(
        &self,
        request: Request<ProxyBody>,
        dial: F,
    ) -> Result<Response<Incoming>, SendError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Io, String>>,
        Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let here = shard::current();
        let existing = self
            .http2
            .lock()
            .expect("pool lock")
            .get(here)
            .and_then(Option::as_ref)
            .filter(|sender| !sender.is_closed())
            .cloned();
        let mut sender = match existing {
            Some(sender) => sender,
            None => {
                let io = self.dial(dial).await?;
                let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                    .adaptive_window(true)
                    .handshake(TokioIo::new(io))
                    .await?;
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "http/2 connection ended");
                    }
                });
                let mut connections = self.http2.lock().expect("pool lock");
                if connections.len() <= here {
                    connections.resize_with(here + 1, || None);
                }
                connections[here] = Some(sender.clone());
                sender
            }
        };
        sender.ready().await?;
        Ok(sender.send_request(request).await?)
    }
}
