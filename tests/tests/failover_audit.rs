//! Failover rules and the audit log through the real binary: a bad rules
//! file stops `meshtwin serve` with every problem listed; good rules are
//! recorded in a hash-chained audit log that `meshtwin audit verify`
//! checks, and one altered byte is named.

use std::path::Path;

use meshtwin_tests::sandbox::{Meshtwin, run_meshtwin};

const EXAMPLE: &str = include_str!("../../failover-rules.example.toml");

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_bad_rules_file_stops_serve_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let text = EXAMPLE
        .replace("mode = \"dry_run\"", "mode = \"yolo\"\nretries = 3")
        .replace("below = 0.01", "below = 0.5")
        .replace("max_services_at_once = 1", "max_services_at_once = 0");
    let rules = write(dir.path(), "rules.toml", &text);
    let data = dir.path().join("data");
    let (code, out) = run_meshtwin(&[
        "serve",
        "--failover-rules",
        &rules,
        "--data-dir",
        data.to_str().unwrap(),
        "--web-port",
        "0",
    ]);
    assert_eq!(code, 64, "{out}");
    // The rule that does not parse is reported, and so are the file's
    // other problems; nothing is written to an audit log.
    for needle in [
        "rules[0]: unknown key `retries`",
        "unknown variant `yolo`",
        "max_services_at_once must be at least 1",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
    assert!(!data.join("audit").exists());

    let text = EXAMPLE.replace("below = 0.01", "below = 0.5");
    let rules = write(dir.path(), "overlap.toml", &text);
    let (code, out) = run_meshtwin(&["serve", "--failover-rules", &rules, "--web-port", "0"]);
    assert_eq!(code, 64, "{out}");
    assert!(out.contains("overlaps the failure"), "{out}");
}

#[test]
fn loaded_rules_are_audited_and_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "rules.toml", EXAMPLE);
    let data = dir.path().join("data");
    for _ in 0..2 {
        let plane = Meshtwin::serve_in(&data, &["--failover-rules", &rules]);
        let (status, _) = plane.terminate();
        assert!(status.success(), "{status}");
    }
    let data_arg = data.to_str().unwrap();
    let (code, out) = run_meshtwin(&["audit", "verify", "--data-dir", data_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 records, chain intact"), "{out}");

    let log = data.join("audit").join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 2);
    for line in text.lines() {
        assert!(line.contains("\"kind\":\"rules_loaded\""), "{line}");
        assert!(line.contains("\"name\":\"payments-region-a\""), "{line}");
        assert!(line.contains("\"mode\":\"dry_run\""), "{line}");
    }
    // One byte of the second record: region-a becomes region-c.
    let mut bytes = text.into_bytes();
    let second = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let at = second
        + bytes[second..]
            .windows(8)
            .position(|w| w == b"region-a")
            .unwrap()
        + 7;
    bytes[at] = b'c';
    std::fs::write(&log, &bytes).unwrap();
    let (code, out) = run_meshtwin(&["audit", "verify", "--data-dir", data_arg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("chain BROKEN at record 2 (line 2)"), "{out}");
    assert!(out.contains("hash mismatch"), "{out}");
    assert!(out.contains("the 1 records before it are intact"), "{out}");

    let (code, out) = run_meshtwin(&["audit", "verify", "--file", "/nonexistent/audit.log"]);
    assert_eq!(code, 66, "{out}");
}

#[test]
fn a_broken_log_is_moved_aside_at_start_and_the_new_chain_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "rules.toml", EXAMPLE);
    let data = dir.path().join("data");
    let plane = Meshtwin::serve_in(&data, &["--failover-rules", &rules]);
    plane.terminate();
    let log = data.join("audit").join("audit.log");
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace("dry_run", "auto!!!");
    std::fs::write(&log, text).unwrap();

    let plane = Meshtwin::serve_in(&data, &["--failover-rules", &rules]);
    plane.terminate();
    let (code, out) = run_meshtwin(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 records"), "{out}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"kind\":\"chain_broken\""), "{text}");
    let moved: Vec<_> = std::fs::read_dir(data.join("audit"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("audit.broken-"))
        .collect();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert!(text.contains(&moved[0]), "{text}");
}
