//! `meshtwin eval smoke`: the ten-case smoke suite is generated, scored by
//! every baseline, reported as Markdown and JSON, and reused from the
//! cache on the next run; the simulation passes its calibration check,
//! the twin builds exactly the graph the spans describe, and every case
//! runs end to end through the twin's detectors.

use std::process::Command;

use meshtwin_tests::sandbox::meshtwin_bin;

fn eval(cache: &std::path::Path, out: &std::path::Path) -> (i32, String) {
    let output = Command::new(meshtwin_bin())
        .args(["eval", "smoke", "--jobs", "2", "--cache"])
        .arg(cache)
        .arg("--out")
        .arg(out)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run meshtwin eval");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().expect("exited"), text)
}

#[test]
fn the_smoke_suite_is_generated_scored_reported_and_cached() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (code, text) = eval(cache.path(), out.path());
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("suite smoke has 10 cases (0 from the cache"),
        "{text}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let methods: Vec<&str> = report["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "meshtwin",
            "meshtwin (traces only)",
            "meshtwin (metrics only)",
            "random",
            "3-sigma",
            "BARO",
            "MicroRank",
            "TraceRCA"
        ]
    );
    // Every case also went end to end through the twin's detectors.
    let detection = &report["detection"];
    assert_eq!(detection["faults"], 8, "{detection}");
    assert_eq!(detection["cases"].as_array().unwrap().len(), 10);
    assert!(
        text.contains("## End to end: the twin's detectors and incidents"),
        "{text}"
    );
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        8 * methods.len(),
        "8 fault cases × every method"
    );
    for case in cases {
        let avg5 = case["avg5"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&avg5), "{case}");
        assert_eq!(case["truth"].as_array().unwrap().len(), 1);
        assert!(case["candidates"].as_u64().unwrap() >= 10, "{case}");
    }
    let overall = |method: &str| {
        report["summary"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["topology"] == "all" && r["fault"] == "all" && r["method"] == method)
            .map(|r| r["avg5"].as_f64().unwrap())
            .unwrap()
    };
    // Signal beats chance: the error-driven methods find injected 5xx
    // and crashes that a random order does not.
    assert!(overall("TraceRCA") > overall("random"), "{text}");
    assert!(overall("meshtwin") >= overall("TraceRCA"), "{text}");
    assert!(overall("BARO") > overall("random"), "{text}");
    let unscored = report["unscored"].as_array().unwrap();
    assert_eq!(unscored.len(), 2, "the load surge and the fault-free run");
    let calibration = &report["calibration"]["checks"];
    assert!(
        calibration
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["holds"] == true),
        "{calibration}"
    );

    let checks = report["graph_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 1, "one per topology of the suite");
    assert_eq!(checks[0]["topology"], "online-boutique");
    assert!(
        checks[0]["expected_edges"].as_u64().unwrap() >= 15,
        "{checks:?}"
    );
    for empty in ["missing", "miscounted"] {
        assert_eq!(checks[0][empty], serde_json::json!([]), "{checks:?}");
    }

    let markdown = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(markdown.contains("| method | AC@1 | AC@3 | Avg@5 | Chance@5 |"));
    assert!(markdown.contains("## online-boutique"));
    assert!(markdown.contains("currency conversions per home page"));

    let (code, text) = eval(cache.path(), out.path());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(10 from the cache"), "{text}");
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("report.json")).unwrap()).unwrap();
    let ranks = |r: &serde_json::Value| {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["top"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ranks(&report), ranks(&again), "rankings are deterministic");
}

#[test]
fn a_bad_suite_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "name = \"bad\"\ntopologies = [\"no-such\"]\nseeds = []\nduration_s = 10.0\n\
         fault_start_s = 20.0\nfault_duration_s = 5.0\nfaults = [\"cpu_hgo\"]\n",
    )
    .unwrap();
    let output = Command::new(meshtwin_bin())
        .arg("eval")
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{text}");
    for problem in ["cpu_hgo", "no-such", "seeds is empty", "fault window"] {
        assert!(text.contains(problem), "{problem} missing from {text}");
    }
}
