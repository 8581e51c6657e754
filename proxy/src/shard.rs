//! Thread per core. `threads = N` serves traffic on N threads, each a
//! single-threaded runtime with listening sockets of its own on the same
//! ports (`SO_REUSEPORT`: the kernel spreads new connections over them)
//! and connections of its own to each endpoint (see [`crate::pool`]). A
//! request never wakes another thread, and when one thread waits for its
//! core, only its own connections wait. Routes, health, identity,
//! metrics and telemetry are shared. Shard 0 is the main thread, which
//! also serves the admin port and talks to the control plane.
//!
//! Linux lets a socket join a port's `SO_REUSEPORT` group only when it
//! belongs to the same user as the sockets already in it.

use std::cell::Cell;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;

/// Connections a listening socket queues before the proxy accepts them.
const BACKLOG: i32 = 1024;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The shard the calling thread serves; 0 on any other thread.
pub fn current() -> usize {
    CURRENT.with(Cell::get)
}

/// Listens on `address` with `count` sockets sharing its port: the first
/// one picks the port when `address` asks for port 0.
pub fn listen(
    address: SocketAddr,
    count: usize,
    what: &str,
) -> Result<Vec<std::net::TcpListener>, String> {
    let mut sockets = Vec::with_capacity(count);
    let mut bound = address;
    for _ in 0..count {
        let socket = reusable_listener(bound, count > 1)
            .map_err(|e| format!("cannot listen on {bound} for {what}: {e}"))?;
        bound = socket.local_addr().map_err(|e| e.to_string())?;
        sockets.push(socket);
    }
    Ok(sockets)
}

fn reusable_listener(address: SocketAddr, shared: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    // As tokio's own `TcpListener::bind`: a restarted proxy can take its
    // port back while the old connections are in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if shared {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// The serving threads after the first, which runs on the caller's
/// runtime. Each runs the tasks spawned on its handle until [`Self::exit`].
pub struct Shards {
    handles: Vec<Handle>,
    exit: watch::Sender<bool>,
}

impl Shards {
    /// Starts `count - 1` threads; shard 0 is the calling runtime.
    pub fn start(count: usize) -> Result<Self, String> {
        let (exit, exit_rx) = watch::channel(false);
        let mut handles = vec![Handle::current()];
        for index in 1..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start serving thread {index}: {e}"))?;
            handles.push(runtime.handle().clone());
            let exit = exit_rx.clone();
            std::thread::Builder::new()
                .name(format!("serve-{index}"))
                .spawn(move || run(index, runtime, exit))
                .map_err(|e| format!("cannot start serving thread {index}: {e}"))?;
        }
        Ok(Self { handles, exit })
    }

    /// Every shard's runtime, shard 0 first.
    pub fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// Ends the serving threads, and with them whatever they still run.
    pub fn exit(&self) {
        let _ = self.exit.send(true);
    }
}

fn run(index: usize, runtime: Runtime, mut exit: watch::Receiver<bool>) {
    CURRENT.with(|current| current.set(index));
    runtime.block_on(async move {
        let _ = exit.wait_for(|exit| *exit).await;
    });
}

/// A tokio listener on `handle`'s runtime, for a socket from [`listen`].
pub fn on_runtime(
    socket: std::net::TcpListener,
    handle: &Handle,
) -> Result<tokio::net::TcpListener, String> {
    let _entered = handle.enter();
    tokio::net::TcpListener::from_std(socket).map_err(|e| e.to_string())
}
