use super::*;

fn log_with(records: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit").join("audit.log");
    let (mut log, opened) = AuditLog::open(&path, 1_000).unwrap();
    assert_eq!(opened, Opened::Intact);
    for i in 0..records {
        log.append(
            "decision",
            serde_json::json!({ "rule": "r", "i": i }),
            1_000 + i,
        )
        .unwrap();
    }
    (dir, path)
}

#[test]
fn an_untouched_chain_verifies_and_reopening_continues_it() {
    let (_dir, path) = log_with(3);
    let verified = verify_file(&path).unwrap().unwrap();
    assert_eq!(verified.records, 3);
    let (mut log, opened) = AuditLog::open(&path, 2_000).unwrap();
    assert_eq!(opened, Opened::Intact);
    let entry = log.append("action", serde_json::json!({}), 2_000).unwrap();
    assert_eq!(entry.seq, 4);
    assert_eq!(entry.prev, verified.head);
    assert_eq!(verify_file(&path).unwrap().unwrap().records, 4);
}

#[test]
fn one_altered_byte_names_its_record() {
    let (_dir, path) = log_with(4);
    let mut text = std::fs::read(&path).unwrap();
    let third = text
        .split(|b| *b == b'\n')
        .take(2)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    // `"i":2` becomes `"i":7` inside record 3.
    let at = third
        + text[third..]
            .windows(5)
            .position(|w| w == b"\"i\":2")
            .unwrap()
        + 4;
    text[at] = b'7';
    let broken = verify_text(&text).unwrap_err();
    assert_eq!((broken.line, broken.record), (3, 3));
    assert!(broken.reason.contains("hash mismatch"), "{}", broken.reason);
    assert_eq!(broken.valid_before.records, 2);
}

#[test]
fn a_removed_record_breaks_the_chain_at_the_next_one() {
    let (_dir, path) = log_with(4);
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: String = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let broken = verify_text(kept.as_bytes()).unwrap_err();
    assert_eq!(broken.line, 2);
    assert!(
        broken.reason.contains("sequence number 3"),
        "{}",
        broken.reason
    );
}

#[test]
fn a_rehashed_edit_still_breaks_the_link_to_the_next_record() {
    let (_dir, path) = log_with(3);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let entry = lines[0][65..].replace("\"i\":0", "\"i\":9");
    lines[0] = format!("{} {entry}", sha256_hex(entry.as_bytes()));
    let edited: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let broken = verify_text(edited.as_bytes()).unwrap_err();
    assert_eq!(broken.line, 2);
    assert!(broken.reason.contains("prev is"), "{}", broken.reason);
}

#[test]
fn a_record_cut_off_by_a_crash_is_dropped_and_said_so() {
    let (_dir, path) = log_with(2);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    let partial = b"0123456789abcdef {\"seq\":3";
    file.write_all(partial).unwrap();
    drop(file);
    let (log, opened) = AuditLog::open(&path, 3_000).unwrap();
    let bytes = partial.len() as u64;
    assert_eq!(opened, Opened::TailDropped { bytes });
    assert_eq!(log.chain().records, 3);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains("\"kind\":\"recovered\"")
    );
    assert_eq!(verify_file(&path).unwrap().unwrap().records, 3);
}

#[test]
fn a_broken_chain_is_moved_aside_and_a_new_one_names_it() {
    let (dir, path) = log_with(2);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"i\":1", "\"i\":5");
    std::fs::write(&path, text).unwrap();
    let (log, opened) = AuditLog::open(&path, 4_000).unwrap();
    let Opened::MovedAside { moved_to, broken } = opened else {
        panic!("moved aside")
    };
    assert_eq!(broken.record, 2);
    assert!(moved_to.exists());
    assert!(moved_to.starts_with(dir.path()));
    assert_eq!(log.chain().records, 1);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"kind\":\"chain_broken\""));
    assert!(text.contains("\"first_bad_record\":2"));
}

#[test]
fn garbage_lines_are_reported_not_panicked_on() {
    for text in [
        &b"x\n"[..],
        b"\n",
        &[0xff; 70],
        b"short line without a hash\n",
    ] {
        assert!(verify_text(text).is_err());
    }
    assert_eq!(verify_text(b"").unwrap().records, 0);
}
