//! The sockets the proxy listens on: one per serving thread on every port
//! (see [`crate::shard`]), and the accept loops each thread runs on its
//! own sockets.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Protocol, ProxyConfig};
use crate::inbound::Inbound;
use crate::outbound::Outbound;
use crate::routes::Routes;
use crate::server::{self, DrainHandle};
use crate::shard;

/// One serving thread's sockets.
pub struct ThreadSockets {
    outbound: TcpListener,
    /// Per-service ports: socket, port, protocol.
    ports: Vec<(TcpListener, u16, Protocol)>,
    inbound: Option<TcpListener>,
}

/// Every listening socket, and the addresses they were bound to.
pub struct Bound {
    pub per_thread: Vec<ThreadSockets>,
    pub outbound: SocketAddr,
    pub inbound: Option<SocketAddr>,
    /// Service name and address of each per-service port.
    pub service_ports: Vec<(String, SocketAddr)>,
}

/// One socket per thread on `address`, and the address they share.
fn bind(
    address: SocketAddr,
    threads: usize,
    what: &str,
) -> Result<(Vec<TcpListener>, SocketAddr), String> {
    let sockets = shard::listen(address, threads, what)?;
    let bound = sockets[0].local_addr().map_err(|e| e.to_string())?;
    Ok((sockets, bound))
}

impl Bound {
    /// Binds the outbound port, each service's port and (with an app) the
    /// inbound port, `config.threads` sockets each. Ports are bound once,
    /// from the file; routes from the control plane can change where a
    /// port leads, not which ports exist.
    pub fn bind(config: &ProxyConfig, routes: &Routes) -> Result<Self, String> {
        let threads = config.threads;
        let (outbound, outbound_address) = bind(config.outbound.listen, threads, "outbound")?;
        let mut per_thread: Vec<ThreadSockets> = outbound
            .into_iter()
            .map(|outbound| ThreadSockets {
                outbound,
                ports: Vec::new(),
                inbound: None,
            })
            .collect();
        let mut service_ports = Vec::new();
        for (port, route) in &routes.by_port {
            let address = SocketAddr::new(config.outbound.listen.ip(), *port);
            let (sockets, bound) = bind(address, threads, &format!("service `{}`", route.name))?;
            service_ports.push((route.name.clone(), bound));
            for (thread, socket) in per_thread.iter_mut().zip(sockets) {
                thread.ports.push((socket, *port, route.protocol));
            }
        }
        let mut inbound_address = None;
        if config.inbound.app.is_some() {
            let (sockets, bound) = bind(config.inbound.listen, threads, "inbound")?;
            inbound_address = Some(bound);
            for (thread, socket) in per_thread.iter_mut().zip(sockets) {
                thread.inbound = Some(socket);
            }
        }
        Ok(Self {
            per_thread,
            outbound: outbound_address,
            inbound: inbound_address,
            service_ports,
        })
    }
}

/// What every serving thread serves its connections with.
pub struct Serving {
    pub outbound: Arc<Outbound>,
    pub inbound: Option<Arc<Inbound>>,
    pub drain: DrainHandle,
    pub stop: watch::Receiver<bool>,
}

impl ThreadSockets {
    /// Spawns this thread's accept loops (and its timer) on `handle`.
    pub fn serve(
        self,
        serving: &Serving,
        handle: &Handle,
        tasks: &mut JoinSet<()>,
    ) -> Result<(), String> {
        let Serving {
            outbound,
            inbound,
            drain,
            stop,
        } = serving;
        tasks.spawn_on(server::keep_a_timer_due(stop.clone()), handle);
        let listener = shard::on_runtime(self.outbound, handle)?;
        let serve = outbound
            .clone()
            .serve_http(listener, None, drain.clone(), stop.clone());
        tasks.spawn_on(serve, handle);
        for (socket, port, protocol) in self.ports {
            let listener = shard::on_runtime(socket, handle)?;
            let (outbound, drain, stop) = (outbound.clone(), drain.clone(), stop.clone());
            match protocol {
                Protocol::Http => tasks.spawn_on(
                    outbound.serve_http(listener, Some(port), drain, stop),
                    handle,
                ),
                Protocol::Tcp => {
                    tasks.spawn_on(outbound.serve_tcp(listener, port, drain, stop), handle)
                }
            };
        }
        if let (Some(inbound), Some(socket)) = (inbound, self.inbound) {
            let listener = shard::on_runtime(socket, handle)?;
            tasks.spawn_on(
                inbound.clone().serve(listener, drain.clone(), stop.clone()),
                handle,
            );
        }
        Ok(())
    }
}
