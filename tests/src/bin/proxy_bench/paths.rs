//! The five paths to the same nginx upstream: direct, two HAProxy
//! processes with mTLS (TLS 1.3) between them, and two meshtwin-proxy
//! processes (outbound → inbound, mTLS) with telemetry on and off, and
//! with telemetry on and one serving thread each.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use meshtwin_tests::mesh::{MeshProxy, ProxySpec, Service, Spawned, free_port};
use meshtwin_tests::sandbox::Meshtwin;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The response body: 1 KiB.
pub(crate) const BODY_BYTES: usize = 1024;

/// One way to reach the upstream, and the proxy processes on it.
pub(crate) struct BenchPath {
    pub(crate) name: &'static str,
    pub(crate) url: String,
    /// (label, pid) of each proxy whose CPU and memory are reported.
    pub(crate) proxies: Vec<(String, u32)>,
}

/// Everything that runs during the benchmark; dropping it stops it all.
pub(crate) struct Fixture {
    pub(crate) paths: Vec<BenchPath>,
    _processes: Vec<Spawned>,
    _meshtwin: Meshtwin,
    _mesh_proxies: Vec<MeshProxy>,
    _dir: tempfile::TempDir,
}

fn wait_for_port(address: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {address}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn nginx(dir: &Path) -> (Spawned, u16) {
    let port = free_port();
    let body = "x".repeat(BODY_BYTES);
    let d = dir.display();
    let config = format!(
        "master_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\ndaemon off;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         keepalive_requests 1000000;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ default_type text/plain; return 200 \"{body}\"; }}\n  }}\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, config).expect("write nginx.conf");
    let mut command = Command::new("nginx");
    command
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(dir.join("nginx-error.log"));
    let nginx = Spawned::start(command, &[]);
    wait_for_port(loopback(port), "nginx");
    (nginx, port)
}

/// A CA and two leaf certificates (PEM cert + key files) for HAProxy.
fn haproxy_certificates(dir: &Path) {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: a leaf named like its issuer looks self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "proxy-bench CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
    for name in ["client", "server"] {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("proxy-bench {name}"));
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        std::fs::write(dir.join(format!("{name}.pem")), pem).expect("write leaf");
    }
}

fn haproxy(dir: &Path, name: &str, config: &str, port: u16) -> Spawned {
    let path = dir.join(format!("{name}.cfg"));
    let config = format!(
        "global\n  ssl-server-verify required\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n{config}"
    );
    std::fs::write(&path, config).expect("write haproxy config");
    let mut command = Command::new("haproxy");
    command.arg("-db").arg("-f").arg(&path);
    let process = Spawned::start(command, &[]);
    wait_for_port(loopback(port), name);
    process
}

/// HAProxy A (plaintext in, mTLS out) → HAProxy B (mTLS in) → nginx.
fn haproxy_pair(dir: &Path, upstream: u16) -> (Spawned, Spawned, u16) {
    haproxy_certificates(dir);
    let (port_a, port_b) = (free_port(), free_port());
    let d = dir.display();
    let b = haproxy(
        dir,
        "haproxy-b",
        &format!(
            "frontend inbound\n  bind 127.0.0.1:{port_b} ssl crt {d}/server.pem ca-file {d}/ca.pem verify required ssl-min-ver TLSv1.3 alpn http/1.1\n  default_backend app\n\
             backend app\n  http-reuse always\n  server nginx 127.0.0.1:{upstream}\n"
        ),
        port_b,
    );
    let a = haproxy(
        dir,
        "haproxy-a",
        &format!(
            "frontend outbound\n  bind 127.0.0.1:{port_a}\n  default_backend hop\n\
             backend hop\n  http-reuse always\n  server b 127.0.0.1:{port_b} ssl crt {d}/client.pem ca-file {d}/ca.pem verify required ssl-min-ver TLSv1.3 alpn http/1.1\n"
        ),
        port_a,
    );
    (a, b, port_a)
}

/// The telemetry-on pair with one serving thread each (`threads = 1`)
/// instead of the default two: what the second thread buys in tail
/// latency, and what it costs in CPU and memory.
pub(crate) const ONE_THREAD: &str = "meshtwin pair (mTLS, telemetry on, one thread)";

/// meshtwin-proxy for `bench-client` (outbound, a local port for
/// `upstream`) → meshtwin-proxy for `upstream` (inbound) → nginx.
async fn meshtwin_pair(
    meshtwin: &Meshtwin,
    upstream: u16,
    telemetry: bool,
    threads: Option<usize>,
) -> (MeshProxy, MeshProxy, u16) {
    let ca = meshtwin.data_dir().join("ca.pem");
    let spec = |service: &str| {
        let mut spec = ProxySpec::new(service, &meshtwin.control, &meshtwin.otlp_grpc, &ca);
        spec.telemetry = telemetry;
        spec.threads = threads;
        spec.flush_ms = (1000, 10_000);
        spec
    };
    let mut inbound = spec("upstream");
    inbound.app = Some(loopback(upstream));
    let inbound = MeshProxy::start(&inbound).await;
    let local_port = free_port();
    let mut outbound = spec("bench-client");
    outbound.services.push(Service {
        name: "upstream".to_owned(),
        protocol: "http",
        port: Some(local_port),
        endpoints: vec![(inbound.inbound.expect("inbound side"), String::new())],
        policy: String::new(),
    });
    let outbound = MeshProxy::start(&outbound).await;
    (outbound, inbound, local_port)
}

/// `meshtwin serve` under `SCHED_IDLE`, inherited from the thread that
/// starts it, so every thread it ever makes has it too. It stands in for
/// a collector on another machine: it runs only when a core has nothing
/// else to do, so its span processing neither competes with the measured
/// path nor makes a woken proxy wait for its time slice.
fn collector_on_idle_cores() -> Meshtwin {
    std::thread::spawn(|| {
        if let Err(error) = meshtwin_proxy::scheduling::idle() {
            eprintln!("proxy-bench: warning: meshtwin serve keeps the normal policy: {error}");
        }
        Meshtwin::serve(&[])
    })
    .join()
    .expect("start meshtwin serve")
}

fn meshtwin_path(
    name: &'static str,
    url: String,
    outbound: &MeshProxy,
    inbound: &MeshProxy,
) -> BenchPath {
    BenchPath {
        name,
        url,
        proxies: vec![
            ("outbound".to_owned(), outbound.process.pid()),
            ("inbound".to_owned(), inbound.process.pid()),
        ],
    }
}

impl Fixture {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (nginx, upstream) = nginx(dir.path());
        let (haproxy_a, haproxy_b, haproxy_port) = haproxy_pair(dir.path(), upstream);
        let meshtwin = collector_on_idle_cores();
        let (on_out, on_in, on_port) = meshtwin_pair(&meshtwin, upstream, true, None).await;
        let (off_out, off_in, off_port) = meshtwin_pair(&meshtwin, upstream, false, None).await;
        let (single_out, single_in, single_port) =
            meshtwin_pair(&meshtwin, upstream, true, Some(1)).await;
        let url = |port: u16| format!("http://127.0.0.1:{port}/");
        let pid = |label: &str, pid: u32| (label.to_owned(), pid);
        let paths = vec![
            BenchPath {
                name: "direct",
                url: url(upstream),
                proxies: Vec::new(),
            },
            BenchPath {
                name: "HAProxy pair (mTLS)",
                url: url(haproxy_port),
                proxies: vec![pid("A", haproxy_a.pid()), pid("B", haproxy_b.pid())],
            },
            meshtwin_path(
                "meshtwin pair (mTLS, telemetry on)",
                url(on_port),
                &on_out,
                &on_in,
            ),
            meshtwin_path(
                "meshtwin pair (mTLS, telemetry off)",
                url(off_port),
                &off_out,
                &off_in,
            ),
            meshtwin_path(ONE_THREAD, url(single_port), &single_out, &single_in),
        ];
        Self {
            paths,
            _processes: vec![nginx, haproxy_a, haproxy_b],
            _meshtwin: meshtwin,
            _mesh_proxies: vec![on_out, on_in, off_out, off_in, single_out, single_in],
            _dir: dir,
        }
    }
}
