//! The test tools `scripts/test` installs: a Python virtualenv with the
//! OpenTelemetry SDK, Node modules with playwright-core, Debian's Chromium.

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing ({what}); run scripts/test, which installs it",
        path.display()
    );
    path
}

/// Python with `opentelemetry-sdk` and the OTLP exporters, or `$MESHTWIN_TEST_PYTHON`.
pub fn python() -> PathBuf {
    let path = std::env::var_os("MESHTWIN_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-venv/bin/python"));
    require(path, "the Python virtualenv with the OpenTelemetry SDK")
}

/// The directory of the browser test scripts, with playwright-core installed.
pub fn browser_tests() -> PathBuf {
    let dir = workspace().join("tests/browser");
    require(dir.join("node_modules/playwright-core"), "playwright-core");
    dir
}

/// Debian's Chromium, or `$CHROMIUM`.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    require(path, "Debian's chromium package")
}

/// Bytes of the files under `dir` (recursively), only those ending in
/// `.{extension}` when one is given.
pub fn bytes_under(dir: &std::path::Path, extension: Option<&str>) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => bytes_under(&e.path(), extension),
            Ok(m) if extension.is_none_or(|x| e.path().extension().is_some_and(|y| y == x)) => {
                m.len()
            }
            _ => 0,
        })
        .sum()
}

/// `target/screenshots/{name}`, with its directory made and any older
/// copy removed.
pub fn screenshot(name: &str) -> PathBuf {
    let dir = workspace().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Runs the browser test `script` (in `tests/browser/`, with Debian's
/// Chromium) with `args`, and returns the JSON summary it prints; fails
/// the test, with its output, when it fails.
pub async fn run_browser(script: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output = tokio::process::Command::new("node")
        .current_dir(browser_tests())
        .env("CHROMIUM", chromium())
        .arg(script)
        .args(args)
        .output()
        .await
        .expect("run node");
    assert!(
        output.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON summary")
}

/// Runs `command` to the end; fails the test, with its stderr, unless it
/// succeeds; returns its stdout.
pub fn stdout_of(mut command: std::process::Command, what: &str) -> Vec<u8> {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `tests/python/{script}` with the tests' Python (the OpenTelemetry
/// SDK installed); returns its stdout.
pub fn run_python(script: &str, args: &[&str]) -> Vec<u8> {
    let mut command = std::process::Command::new(python());
    command
        .arg(workspace().join("tests/python").join(script))
        .args(args);
    stdout_of(command, script)
}
