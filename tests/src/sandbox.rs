//! Starts and stops real `meshtwin` processes.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::mesh::Spawned;

/// The `meshtwin` binary of the same build profile as this executable
/// (built by `cargo build --bins`, which `scripts/test` runs), or
/// `$MESHTWIN_BIN`. Tests live in `target/<profile>/deps/`, binaries in
/// `target/<profile>/`.
pub fn meshtwin_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MESHTWIN_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("executable path");
    let mut dir = exe.parent().expect("executable dir");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("profile dir");
    }
    let bin = dir.join("meshtwin");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p meshtwin` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// A running `meshtwin` and its addresses.
pub struct Meshtwin {
    process: Spawned,
    /// `http://127.0.0.1:PORT` of the web UI, API and /metrics.
    pub web: String,
    /// `http://127.0.0.1:PORT` of OTLP/gRPC.
    pub otlp_grpc: String,
    /// `http://127.0.0.1:PORT` of OTLP/HTTP.
    pub otlp_http: String,
    /// `http://127.0.0.1:PORT` of the control API.
    pub control: String,
    data_dir: TempDir,
}

impl Meshtwin {
    /// `meshtwin serve` on ephemeral ports with a fresh data directory.
    pub fn serve(extra: &[&str]) -> Self {
        Self::start("serve", extra)
    }

    /// `meshtwin demo` on ephemeral ports with a fresh data directory.
    pub fn demo(extra: &[&str]) -> Self {
        Self::start("demo", extra)
    }

    fn start(subcommand: &str, extra: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(meshtwin_bin());
        command
            .arg(subcommand)
            .args([
                "--otlp-grpc-port",
                "0",
                "--otlp-http-port",
                "0",
                "--web-port",
                "0",
                "--control-port",
                "0",
            ])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(extra)
            .env("RUST_LOG", "warn");
        let process = Spawned::start(command, &["ui", "otlp grpc", "otlp http", "control"]);
        let url = |key: &str| process.addresses[key].trim_end_matches('/').to_owned();
        Self {
            web: url("ui"),
            otlp_grpc: url("otlp grpc"),
            otlp_http: url("otlp http"),
            control: url("control"),
            process,
            data_dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Stdout lines printed since the addresses.
    pub fn output(&self) -> Vec<String> {
        self.process.output()
    }

    /// Sends SIGTERM, waits (bounded) for the exit, and returns the status
    /// with what the process printed since the addresses.
    pub fn terminate(self) -> (ExitStatus, Vec<String>) {
        self.process.terminate()
    }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
