//! Starts and stops real `meshtwin` processes.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a process may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
    child: Child,
    /// `http://127.0.0.1:PORT` of the web UI, API and /metrics.
    pub web: String,
    /// `http://127.0.0.1:PORT` of OTLP/gRPC.
    pub otlp_grpc: String,
    /// `http://127.0.0.1:PORT` of OTLP/HTTP.
    pub otlp_http: String,
    /// `http://127.0.0.1:PORT` of the control API.
    pub control: String,
    lines: mpsc::Receiver<String>,
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
        let mut child = Command::new(meshtwin_bin())
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
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn meshtwin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut found = [None, None, None, None];
        let deadline = Instant::now() + START_TIMEOUT;
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("meshtwin did not print its addresses within {START_TIMEOUT:?}");
                }
            };
            for (slot, prefix) in
                found
                    .iter_mut()
                    .zip(["ui:", "otlp grpc:", "otlp http:", "control:"])
            {
                if let Some(rest) = line.trim().strip_prefix(prefix) {
                    *slot = Some(rest.trim().trim_end_matches('/').to_owned());
                }
            }
        }
        let [web, otlp_grpc, otlp_http, control] = found.map(|f| f.expect("all found"));
        Self {
            child,
            web,
            otlp_grpc,
            otlp_http,
            control,
            lines,
            data_dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Stdout lines printed since the addresses.
    pub fn output(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Sends SIGTERM, waits (bounded) for the exit, and returns the status
    /// with what the process printed since the addresses.
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
                "meshtwin did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Meshtwin {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
