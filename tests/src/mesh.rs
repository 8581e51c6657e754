//! Proxies and apps as real processes: `meshtwin-proxy` in front of
//! `mesh-app`, configured from TOML written to a temp dir, stopped by PID.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::client;
use crate::sandbox::{Meshtwin, eventually, meshtwin_bin};

/// A binary built beside `meshtwin` (same profile).
pub fn sibling_bin(name: &str) -> PathBuf {
    let bin = meshtwin_bin().with_file_name(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// How long a process may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process that printed `key: value` lines on start.
pub struct Spawned {
    child: Child,
    pub addresses: HashMap<String, String>,
    lines: mpsc::Receiver<String>,
}

impl Spawned {
    /// Runs `command` and waits (at most [`START_TIMEOUT`]) until it
    /// printed every key.
    pub fn start(mut command: Command, keys: &[&str]) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut addresses = HashMap::new();
        let deadline = Instant::now() + START_TIMEOUT;
        while !keys.iter().all(|k| addresses.contains_key(*k)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                let _ = child.kill();
                panic!(
                    "{command:?} did not print {keys:?} within {START_TIMEOUT:?} (got {addresses:?})"
                );
            };
            if let Some((key, value)) = line.split_once(": ") {
                addresses.insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
        Self {
            child,
            addresses,
            lines,
        }
    }

    pub fn address(&self, key: &str) -> SocketAddr {
        self.addresses[key].parse().expect("socket address")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then a bounded wait (20 s) for the exit; returns the status
    /// with what the process printed since its addresses.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The reader thread ends at EOF, which follows the exit.
                let mut output = Vec::new();
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    output.push(line);
                }
                return (status, output);
            }
            assert!(
                Instant::now() < deadline,
                "process did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lines printed after the addresses.
    pub fn output(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `mesh-app --name NAME`, with TCP echo when `tcp` is set.
pub fn start_app(name: &str, tcp: bool) -> Spawned {
    start_app_on(name, "127.0.0.1:0", tcp)
}

/// `mesh-app` on a given HTTP address (to restart it where it was).
pub fn start_app_on(name: &str, http: &str, tcp: bool) -> Spawned {
    let mut command = Command::new(sibling_bin("mesh-app"));
    command.args(["--name", name, "--http", http]);
    let mut keys = vec!["http"];
    if tcp {
        command.args(["--tcp", "127.0.0.1:0"]);
        keys.push("tcp");
    }
    Spawned::start(command, &keys)
}

/// A destination in a proxy's config.
pub struct Service {
    pub name: String,
    pub protocol: &'static str,
    pub port: Option<u16>,
    /// Inbound addresses and their localities.
    pub endpoints: Vec<(SocketAddr, String)>,
    /// TOML keys and tables of the `[[services]]` entry: retry, outlier,
    /// faults …
    pub policy: String,
}

/// What a proxy is configured with.
pub struct ProxySpec {
    pub service: String,
    pub control: String,
    pub collector: String,
    pub trust_anchors: PathBuf,
    pub app: Option<SocketAddr>,
    pub opaque_app: Option<SocketAddr>,
    pub locality: String,
    pub permissive: bool,
    pub telemetry: bool,
    /// `telemetry.flush_interval_ms` and `metrics_interval_ms`: short for
    /// tests, the defaults (1000, 10000) for benchmarks.
    pub flush_ms: (u64, u64),
    /// 0 picks a free port.
    pub inbound_port: u16,
    pub services: Vec<Service>,
    /// The `scheduling` key; `None` leaves the proxy's default.
    pub scheduling: Option<&'static str>,
    /// The `threads` key; `None` leaves the proxy's default.
    pub threads: Option<usize>,
}

impl ProxySpec {
    pub fn new(service: &str, control: &str, collector: &str, trust_anchors: &Path) -> Self {
        Self {
            service: service.to_owned(),
            control: control.to_owned(),
            collector: collector.to_owned(),
            trust_anchors: trust_anchors.to_owned(),
            app: None,
            opaque_app: None,
            locality: String::new(),
            permissive: false,
            telemetry: true,
            flush_ms: (100, 200),
            inbound_port: 0,
            services: Vec::new(),
            scheduling: None,
            threads: None,
        }
    }

    pub fn toml(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "locality = \"{}\"", self.locality);
        if let Some(scheduling) = self.scheduling {
            let _ = writeln!(out, "scheduling = \"{scheduling}\"");
        }
        if let Some(threads) = self.threads {
            let _ = writeln!(out, "threads = {threads}");
        }
        let _ = writeln!(
            out,
            "[identity]\nservice = \"{}\"\ntrust_anchors = \"{}\"",
            self.service,
            self.trust_anchors.display()
        );
        let _ = writeln!(out, "[control_plane]\naddress = \"{}\"", self.control);
        let _ = writeln!(
            out,
            "[telemetry]\nenabled = {}\ncollector = \"{}\"\nflush_interval_ms = {}\nmetrics_interval_ms = {}",
            self.telemetry, self.collector, self.flush_ms.0, self.flush_ms.1
        );
        let _ = writeln!(
            out,
            "[inbound]\nlisten = \"127.0.0.1:{}\"\npermissive = {}",
            self.inbound_port, self.permissive
        );
        if let Some(app) = self.app {
            let _ = writeln!(out, "app = \"{app}\"");
        }
        if let Some(app) = self.opaque_app {
            let _ = writeln!(out, "opaque_app = \"{app}\"");
        }
        let _ = writeln!(
            out,
            "[outbound]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\""
        );
        for service in &self.services {
            let _ = writeln!(
                out,
                "[[services]]\nname = \"{}\"\nprotocol = \"{}\"",
                service.name, service.protocol
            );
            if let Some(port) = service.port {
                let _ = writeln!(out, "port = {port}");
            }
            let _ = writeln!(out, "{}", service.policy);
            for (address, locality) in &service.endpoints {
                let _ = writeln!(
                    out,
                    "[[services.endpoints]]\naddress = \"{address}\"\nlocality = \"{locality}\""
                );
            }
        }
        out
    }
}

/// A running `meshtwin-proxy` that holds its certificate.
pub struct MeshProxy {
    pub process: Spawned,
    pub outbound: SocketAddr,
    pub inbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    _config: tempfile::TempDir,
}

impl MeshProxy {
    /// Starts a proxy and waits (at most 20 s) for `/ready`.
    pub async fn start(spec: &ProxySpec) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, spec.toml()).expect("write proxy config");
        let mut command = Command::new(sibling_bin("meshtwin-proxy"));
        command.arg("--config").arg(&path).env("RUST_LOG", "warn");
        let mut keys = vec!["outbound", "admin"];
        if spec.app.is_some() {
            keys.push("inbound");
        }
        let process = Spawned::start(command, &keys);
        let proxy = Self {
            outbound: process.address("outbound"),
            inbound: spec.app.map(|_| process.address("inbound")),
            admin: process.address("admin"),
            process,
            _config: dir,
        };
        let ready = format!("http://{}/ready", proxy.admin);
        eventually(Duration::from_secs(20), "the proxy to be ready", || async {
            (client::get(&ready).await.status == 200).then_some(())
        })
        .await;
        proxy
    }

    /// The proxy's Prometheus page.
    pub async fn metrics(&self) -> String {
        client::get(&format!("http://{}/metrics", self.admin))
            .await
            .text()
    }
}

/// A port that was free a moment ago, for configs that must name a port
/// before the process that binds it starts. It is drawn below Linux's
/// ephemeral range (32768–60999): a port from that range can be taken by
/// any outgoing connection of a parallel test before the proxy binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Spread processes apart; within one, walk the range.
    let base = 20_000 + (std::process::id() * 397) % 12_000;
    for _ in 0..12_000 {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (base - 20_000 + step * 7) % 12_000;
        let port = u16::try_from(port).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000 on 127.0.0.1")
}

/// An app's request through its proxy's outbound side to `host`.
pub async fn call(outbound: SocketAddr, host: &str, path: &str) -> client::Reply {
    let url = format!("http://{outbound}{path}");
    client::request(http::Method::GET, &url, &[("host", host)], Vec::new()).await
}

/// A destination with one endpoint, an inbound proxy on loopback `port`.
pub fn one_endpoint(
    name: &str,
    protocol: &'static str,
    local_port: Option<u16>,
    port: u16,
) -> Service {
    Service {
        name: name.to_owned(),
        protocol,
        port: local_port,
        endpoints: vec![(([127, 0, 0, 1], port).into(), String::new())],
        policy: String::new(),
    }
}

/// The smallest mesh: a `ledger` app behind its proxy (`b`), and a
/// `payments` proxy (`a`) that calls it; spans go to `collector`.
pub struct Pair {
    pub app: Spawned,
    pub a: MeshProxy,
    pub b: MeshProxy,
}

impl Pair {
    pub async fn start(control: &str, collector: &str, trust_anchors: &Path) -> Self {
        let app = start_app("ledger", false);
        let mut spec_b = ProxySpec::new("ledger", control, collector, trust_anchors);
        spec_b.app = Some(app.address("http"));
        let b = MeshProxy::start(&spec_b).await;
        let mut spec_a = ProxySpec::new("payments", control, collector, trust_anchors);
        let inbound = b.inbound.expect("ledger has an inbound side").port();
        spec_a
            .services
            .push(one_endpoint("ledger", "http", None, inbound));
        let a = MeshProxy::start(&spec_a).await;
        Self { app, a, b }
    }
}

/// `service` in `locality`: `mesh-app` named `SERVICE-LOCALITY` behind an
/// inbound proxy with its identity from `control_plane`, reporting spans
/// to it.
pub async fn instance(
    control_plane: &Meshtwin,
    service: &str,
    locality: &str,
) -> (Spawned, MeshProxy) {
    let app = start_app(&format!("{service}-{locality}"), false);
    let mut spec = spec_in(control_plane, service, locality);
    spec.app = Some(app.address("http"));
    let proxy = MeshProxy::start(&spec).await;
    (app, proxy)
}

/// A caller's proxy (outbound only) for `service` in `locality`, with no
/// services of its own: its routes come from `control_plane`'s stream.
pub async fn caller(control_plane: &Meshtwin, service: &str, locality: &str) -> MeshProxy {
    MeshProxy::start(&spec_in(control_plane, service, locality)).await
}

/// A proxy of `service` in `locality` with its identity from, and its
/// spans to, `control_plane`.
fn spec_in(control_plane: &Meshtwin, service: &str, locality: &str) -> ProxySpec {
    let ca = control_plane.data_dir().join("ca.pem");
    let mut spec = ProxySpec::new(
        service,
        &control_plane.control,
        &control_plane.otlp_grpc,
        &ca,
    );
    spec.locality = locality.to_owned();
    spec
}

/// Writes a mesh routes file: `service` at `endpoints` (inbound address,
/// locality), then `extra` TOML (overrides).
pub fn write_routes(path: &Path, service: &str, endpoints: &[(SocketAddr, &str)], extra: &str) {
    let mut text = format!("[[services]]\nname = \"{service}\"\n");
    for (address, locality) in endpoints {
        text.push_str(&format!(
            "[[services.endpoints]]\naddress = \"{address}\"\nlocality = \"{locality}\"\n"
        ));
    }
    text.push_str(extra);
    std::fs::write(path, text).expect("write routes");
}
