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
    data_dir: PathBuf,
    /// Deleted on drop, unless the caller owns the directory.
    _owned: Option<TempDir>,
}

impl Meshtwin {
    /// `meshtwin serve` on ephemeral ports with a fresh data directory.
    pub fn serve(extra: &[&str]) -> Self {
        Self::start("serve", extra)
    }

    /// `meshtwin serve` with a config file holding `toml`, on ephemeral
    /// ports with a fresh data directory.
    pub fn serve_with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("meshtwin.toml");
        std::fs::write(&config, toml).expect("write the config");
        let config = config.to_str().expect("a UTF-8 path").to_owned();
        let data_dir = dir.path().join("data");
        Self::start_in("serve", data_dir, Some(dir), &["--config", &config])
    }

    /// `meshtwin demo` on ephemeral ports with a fresh data directory.
    pub fn demo(extra: &[&str]) -> Self {
        Self::start("demo", extra)
    }

    /// `meshtwin serve` on ephemeral ports with the data directory `dir`,
    /// which outlives the process (to start another on it).
    pub fn serve_in(dir: &std::path::Path, extra: &[&str]) -> Self {
        Self::start_in("serve", dir.to_owned(), None, extra)
    }

    fn start(subcommand: &str, extra: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(
            subcommand,
            data_dir.path().to_owned(),
            Some(data_dir),
            extra,
        )
    }

    fn start_in(
        subcommand: &str,
        data_dir: PathBuf,
        owned: Option<TempDir>,
        extra: &[&str],
    ) -> Self {
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
            .arg(&data_dir)
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
            _owned: owned,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// SIGKILL (`kill -9`): no chance to flush or clean up.
    pub fn kill(self) {
        self.process.kill();
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

/// Runs `meshtwin ARGS` to its end (logging at warn); its exit code and
/// what it printed, stdout then stderr.
pub fn run_meshtwin(args: &[&str]) -> (i32, String) {
    let output = Command::new(meshtwin_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meshtwin");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().expect("exited"), text)
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
