//! The `meshtwin` command line: help, config errors, start-up failures,
//! clean shutdown.

use std::process::Command;

use meshtwin_tests::sandbox::{Meshtwin, meshtwin_bin};

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(meshtwin_bin())
        .args(args)
        .output()
        .expect("run meshtwin");
    (
        output.status.code().expect("exited"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn help_explains_every_subcommand_and_flag() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for word in ["serve", "demo", "simulate", "generate", "replay"] {
        assert!(out.contains(word), "{word} missing from:\n{out}");
    }
    let (code, out, _) = run(&["serve", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--bind",
        "--otlp-grpc-port",
        "--otlp-http-port",
        "--web-port",
        "--data-dir",
        "--max-request-bytes",
        "4317",
        "4318",
        "8080",
    ] {
        assert!(out.contains(flag), "{flag} missing from:\n{out}");
    }
    let (_, out, _) = run(&["demo", "--help"]);
    assert!(out.contains("--rate") && out.contains("--seed"), "{out}");
}

#[test]
fn a_bad_config_file_exits_64_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("meshtwin.toml");
    std::fs::write(
        &config,
        "colour = \"blue\"\n[listen]\nweb_port = 70000\n[twin]\npair_wait = 3\nidle_expiry_seconds = 1\n",
    )
    .unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 64, "{err}");
    for needle in ["`colour`", "`twin.pair_wait`", "listen:"] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }

    // Values that parse but are out of range are all reported too.
    std::fs::write(&config, "[twin]\nidle_expiry_seconds = 1\nmax_nodes = 0\n").unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("twin.idle_expiry_seconds") && err.contains("twin.max_nodes"),
        "{err}"
    );
}

#[test]
fn the_example_config_file_is_valid_and_complete() {
    let example = meshtwin_tests::tools::workspace().join("meshtwin.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&example).expect("meshtwin.example.toml");
    // Ephemeral ports and a temp data dir, everything else as shipped.
    let text = text
        .replace("otlp_grpc_port = 4317", "otlp_grpc_port = 0")
        .replace("otlp_http_port = 4318", "otlp_http_port = 0")
        .replace("web_port = 8080", "web_port = 0")
        .replace(
            "data_dir = \"meshtwin-data\"",
            &format!("data_dir = {:?}", dir.path().join("data")),
        );
    let config = dir.path().join("meshtwin.toml");
    std::fs::write(&config, text).unwrap();
    let meshtwin = Meshtwin::serve(&["--config", config.to_str().unwrap()]);
    assert_eq!(meshtwin.terminate().0.code(), Some(0));
}

#[test]
fn a_port_in_use_or_a_locked_data_dir_fails_start_up_with_a_reason() {
    let first = Meshtwin::serve(&[]);
    let port = first.web.rsplit(':').next().unwrap().to_owned();
    let other = tempfile::tempdir().unwrap();
    let (code, _, err) = run(&[
        "serve",
        "--web-port",
        &port,
        "--otlp-grpc-port",
        "0",
        "--otlp-http-port",
        "0",
        "--data-dir",
        other.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot listen") && err.contains("--web-port"),
        "{err}"
    );

    let data_dir = first.data_dir().to_str().unwrap().to_owned();
    let (code, _, err) = run(&[
        "serve",
        "--web-port",
        "0",
        "--otlp-grpc-port",
        "0",
        "--otlp-http-port",
        "0",
        "--data-dir",
        &data_dir,
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("in use by another meshtwin"), "{err}");
}

#[test]
fn sigterm_stops_the_demo_cleanly_with_a_summary() {
    let demo = Meshtwin::demo(&["--rate", "50"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let lines_before = demo.output();
    assert!(
        lines_before
            .iter()
            .any(|l| l.starts_with("demo: Online Boutique")),
        "{lines_before:?}"
    );
    let (status, output) = demo.terminate();
    assert_eq!(status.code(), Some(0));
    let summary = output
        .iter()
        .find(|l| l.starts_with("demo: sent"))
        .expect("a summary line");
    assert!(summary.contains("; 0 requests failed"), "{summary}");
}

#[test]
fn bad_span_store_settings_are_refused_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("meshtwin.toml");
    std::fs::write(
        &config,
        "[store]\nsegment_max_spans = 5\nretention_max_age_hours = 0\nretension = 1\n",
    )
    .unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("retension"), "{err}");
    let fixed = "[store]\nsegment_max_spans = 5\nretention_max_age_hours = 0\n";
    std::fs::write(&config, fixed).unwrap();
    let (code, _, err) = run(&["serve", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("store.segment_max_spans"), "{err}");
    assert!(err.contains("store.retention_max_age_hours"), "{err}");
}
