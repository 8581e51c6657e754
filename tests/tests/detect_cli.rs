//! `meshtwin detect FILE.csv`: the real binary scores a series, says which
//! rows it skipped and why, and refuses bad settings.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use meshtwin_tests::sandbox::meshtwin_bin;

const START: i64 = 1_795_269_780;

/// 100 ± about 5, deterministic (a hashed sequence, no RNG crate needed).
fn noisy(i: u64) -> f64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 32;
    // Sum of four uniforms: roughly normal, sd ≈ 5.
    let uniform = |shift: u32| ((x >> shift) & 0xFFFF) as f64 / 65535.0 - 0.5;
    100.0 + 8.66 * (uniform(0) + uniform(16) + uniform(32) + uniform(48))
}

fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(meshtwin_bin())
        .arg("detect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run meshtwin detect");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("meshtwin detect exits");
    (
        status.code().expect("exited"),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Rows of the output CSV, header first, split into fields.
fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn a_spike_and_a_shift_alarm_and_noise_and_warm_up_do_not() {
    let mut csv = String::new();
    for i in 0..1000u64 {
        let value = match i {
            600 => 180.0,
            800..900 => noisy(i) + 40.0,
            _ => noisy(i),
        };
        csv.push_str(&format!("{},{value:.3}\n", START + i as i64 * 10));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("latency.csv");
    let output = dir.path().join("scored.csv");
    std::fs::write(&input, csv).unwrap();
    let (code, _, err) = run(
        &[input.to_str().unwrap(), "--out", output.to_str().unwrap()],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1000 points"), "{err}");
    let rows = rows(&std::fs::read_to_string(&output).unwrap());
    assert_eq!(
        rows[0],
        [
            "timestamp",
            "value",
            "expected",
            "lower",
            "upper",
            "score",
            "alarm",
            "kind",
            "deviation"
        ]
    );
    let points = &rows[1..];
    assert_eq!(points.len(), 1000);
    for point in &points[..30] {
        assert_eq!((point[2].as_str(), point[6].as_str()), ("", "false"));
    }
    for point in points {
        let score: f64 = point[5].parse().unwrap();
        assert!((0.0..=1.0).contains(&score), "{point:?}");
        assert_eq!(point[6] == "true", score == 1.0, "{point:?}");
    }
    assert_eq!(points[600][6..], ["true", "spike", "above"]);
    let alarmed =
        |range: std::ops::Range<usize>| points[range].iter().filter(|p| p[6] == "true").count();
    assert!(
        alarmed(800..900) >= 90,
        "{} of the shift",
        alarmed(800..900)
    );
    let elsewhere = alarmed(30..1000) - alarmed(800..900) - 1;
    assert!(elsewhere <= 3, "{elsewhere} alarms on noise");
}

#[test]
fn stdin_with_a_header_and_rfc3339_times_is_read() {
    let mut csv = String::from("time,value\n");
    for minute in 0..50 {
        csv.push_str(&format!(
            "2026-11-21T14:{minute:02}:00Z,{}\n",
            noisy(minute)
        ));
    }
    let (code, out, err) = run(&["-", "--signal", "latency-p99"], Some(&csv));
    assert_eq!(code, 0, "{err}");
    let rows = rows(&out);
    assert_eq!(rows.len(), 51, "{out}");
    assert_eq!(rows[1][0], "2026-11-21T14:00:00Z");
}

#[test]
fn bad_rows_are_skipped_by_line_and_exit_65_and_the_rest_is_written() {
    let mut csv = String::new();
    for i in 0..40 {
        csv.push_str(&format!("{},{}\n", START + i * 10, noisy(i as u64)));
    }
    csv.push_str("yesterday,5\n1795300000,abc\n1795300010,NaN\n1795300020,1,2\n1795300030,7\n");
    let (code, out, err) = run(&["-"], Some(&csv));
    assert_eq!(code, 65, "{err}");
    for needle in [
        "4 rows skipped",
        "line 41: timestamp \"yesterday\"",
        "line 42: value \"abc\" is not a number",
        "line 43: value is not a finite number",
        "line 44: expected 2 fields",
    ] {
        assert!(err.contains(needle), "{needle} missing from:\n{err}");
    }
    assert_eq!(rows(&out).len(), 1 + 41, "{out}");
}

#[test]
fn bad_settings_exit_64_listing_every_problem_and_a_missing_file_exits_1() {
    let (code, _, err) = run(
        &["-", "--sensitivity", "0", "--half-life-points", "1"],
        Some(""),
    );
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("--sensitivity: must be between 1 and 10"),
        "{err}"
    );
    assert!(err.contains("--half-life-points:"), "{err}");
    let (code, _, err) = run(&["/nonexistent/series.csv"], None);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot read /nonexistent/series.csv"), "{err}");
}
