//! The systems under test, each started fresh for every run: meshtwin
//! (measured until its twin has taken in every span) and rotel.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use meshtwin_tests::client::{get, metric};
use meshtwin_tests::machine;
use meshtwin_tests::sandbox::Meshtwin;

use super::load::send_all;
use super::{Row, SPANS_PER_REQUEST, Transport};

pub(crate) fn find_rotel() -> Option<PathBuf> {
    let lib = meshtwin_tests::tools::workspace().join("target/bench-venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/rotel/rotel-agent"))
        .find(|path| path.exists())
}

/// Whether meshtwin keeps the spans on disk (its default), in memory
/// only, or only feeds the twin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    On,
    Memory,
    Off,
}

impl Store {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::On => "store on",
            Self::Memory => "store in memory",
            Self::Off => "store off",
        }
    }

    /// meshtwin's settings: the defaults, and for the memory-only store
    /// the limit of meshtwin.example.toml (below the spans sent, so the
    /// oldest are dropped as they would be in a long run).
    fn settings(self) -> &'static str {
        match self {
            Self::On => "[store]\nenabled = true\n",
            Self::Memory => "[store]\nenabled = true\nmemory_only_max_spans = 1000000\n",
            Self::Off => "[store]\nenabled = false\n",
        }
    }

    /// The counter that reaches the spans sent once every one is stored.
    fn stored_series(self) -> Option<&'static str> {
        match self {
            Self::On => Some("meshtwin_store_spans_in_segments_total"),
            Self::Memory => Some("meshtwin_store_spans_in_memory_total"),
            Self::Off => None,
        }
    }
}

async fn wait_for(metrics: &str, series: &str, value: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page = get(metrics).await.text();
        if metric(&page, series) == Some(value as f64) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn run_meshtwin(
    transport: Transport,
    store: Store,
    warmup: &[Bytes],
    payloads: &[Bytes],
    concurrency: usize,
) -> Row {
    let config = tempfile::NamedTempFile::new().expect("temp file");
    let total = (warmup.len() + payloads.len()) * SPANS_PER_REQUEST;
    std::fs::write(config.path(), store.settings()).expect("config");
    let meshtwin = Meshtwin::serve(&["--config", config.path().to_str().expect("utf-8 path")]);
    let endpoint = match transport {
        Transport::Grpc => meshtwin.otlp_grpc.clone(),
        Transport::Http => meshtwin.otlp_http.clone(),
    };
    send_all(&endpoint, transport, warmup, concurrency).await;
    let metrics = format!("{}/metrics", meshtwin.web);
    if let Some(stored) = store.stored_series() {
        // The warm-up's spans are stored before measuring starts.
        let warm = warmup.len() * SPANS_PER_REQUEST;
        wait_for(&metrics, stored, warm, "the warm-up being stored").await;
    }
    let cpu_before = machine::cpu_seconds(meshtwin.pid()).expect("cpu");
    let (wall, retries) = send_all(&endpoint, transport, payloads, concurrency).await;
    // Measured until the twin has taken in every span, not just the
    // receiver; and, with a store, until every span is in it (on disk: in
    // a Parquet segment).
    let ingested = "meshtwin_twin_spans_ingested_total";
    wait_for(&metrics, ingested, total, "the twin catching up").await;
    if let Some(stored) = store.stored_series() {
        wait_for(&metrics, stored, total, "every span being stored").await;
    }
    let mut disk_bytes_per_span = None;
    if store == Store::On {
        let bytes = meshtwin_tests::tools::bytes_under(
            &meshtwin.data_dir().join("store/spans"),
            Some("parquet"),
        );
        disk_bytes_per_span = Some(bytes as f64 / total as f64);
    }
    let cpu = machine::cpu_seconds(meshtwin.pid()).expect("cpu") - cpu_before;
    Row {
        system: match store {
            Store::On => "meshtwin (twin updating, store on)",
            Store::Memory => "meshtwin (twin updating, store in memory)",
            Store::Off => "meshtwin (twin updating, store off)",
        },
        disk_bytes_per_span,
        transport: transport.label(),
        spans: payloads.len() * SPANS_PER_REQUEST,
        wall,
        cpu,
        peak_rss_mib: machine::peak_rss_mib(meshtwin.pid()),
        retries,
        range: (0.0, 0.0),
    }
}

struct Rotel(Child);

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub(crate) async fn run_rotel(
    binary: &Path,
    transport: Transport,
    warmup: &[Bytes],
    payloads: &[Bytes],
    concurrency: usize,
) -> Row {
    let (grpc_port, http_port) = (free_port(), free_port());
    let child = Command::new(binary)
        .args(["start", "--exporter", "blackhole"])
        .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc_port}")])
        .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http_port}")])
        .args([
            "--pid-file",
            &std::env::temp_dir()
                .join(format!("rotel-bench-{grpc_port}.pid"))
                .to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rotel-agent");
    let rotel = Rotel(child);
    let port = match transport {
        Transport::Grpc => grpc_port,
        Transport::Http => http_port,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rotel did not listen within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let endpoint = format!("http://127.0.0.1:{port}");
    send_all(&endpoint, transport, warmup, concurrency).await;
    let pid = rotel.0.id();
    let cpu_before = machine::cpu_seconds(pid).expect("cpu");
    let (wall, retries) = send_all(&endpoint, transport, payloads, concurrency).await;
    // Let its batches flush to the blackhole.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = machine::cpu_seconds(pid).expect("cpu") - cpu_before;
    Row {
        system: "rotel (blackhole exporter)",
        transport: transport.label(),
        spans: payloads.len() * SPANS_PER_REQUEST,
        wall,
        cpu,
        peak_rss_mib: machine::peak_rss_mib(pid),
        retries,
        disk_bytes_per_span: None,
        range: (0.0, 0.0),
    }
}
