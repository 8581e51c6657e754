//! `eval-bench`: how long the `dev` suite takes to generate (cold, then
//! from the cache) and to score, and how every baseline ranks on it,
//! each against the random ranking of the same run; recorded in
//! BENCHMARKS.md. Refuses to run on a busy machine unless `--force`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;
use meshtwin_tests::{bench_record, machine};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    name = "eval-bench",
    about = "Time and score `meshtwin eval` on a suite"
)]
struct Args {
    /// The suite to run.
    #[arg(long, default_value = "dev")]
    suite: String,
    /// The meshtwin binary [default: target/release/meshtwin].
    #[arg(long)]
    meshtwin: Option<PathBuf>,
    /// Write the tables into this file (BENCHMARKS.md).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Run even if the machine is busy (the results are marked).
    #[arg(long)]
    force: bool,
}

struct Run {
    wall_s: f64,
    ready_s: f64,
    scored_s: f64,
    end_to_end_s: f64,
}

/// The number after `marker` in `text` (`ready in 23.6 s` → 23.6).
fn number_after(text: &str, marker: &str) -> f64 {
    text.split(marker)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::NAN)
}

fn run(meshtwin: &Path, suite: &str, cache: &Path, out: &Path) -> Run {
    let started = Instant::now();
    let output = Command::new(meshtwin)
        .args(["eval", suite, "--cache"])
        .arg(cache)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run meshtwin eval");
    let wall_s = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "meshtwin eval failed:\n{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Run {
        wall_s,
        ready_s: number_after(&text, "ready in "),
        scored_s: number_after(&text, "ranked every case in "),
        end_to_end_s: number_after(&text, "through the twin in "),
    }
}

fn summary<'a>(report: &'a Value, topology: &str, method: &str) -> Option<&'a Value> {
    row(report, topology, "all", method)
}

fn row<'a>(report: &'a Value, topology: &str, fault: &str, method: &str) -> Option<&'a Value> {
    report["summary"]
        .as_array()?
        .iter()
        .find(|r| r["topology"] == topology && r["fault"] == fault && r["method"] == method)
}

fn tables(
    report: &Value,
    cold: &Run,
    cached: &Run,
    cases: usize,
    spans: u64,
    bytes: u64,
) -> String {
    let f = |v: &Value, key: &str| v[key].as_f64().unwrap_or(f64::NAN);
    let methods: Vec<&str> = report["methods"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = format!(
        "Suite `{}`: {cases} cases, {spans} spans, {:.2} GB cached; {}.\n\n",
        report["suite"].as_str().unwrap_or("?"),
        bytes as f64 / 1e9,
        machine::describe()
    );
    out += "| step | cold cache | warm cache |\n| --- | ---: | ---: |\n";
    out += &format!(
        "| generate (or reuse) every case | {:.1} s | {:.1} s |\n",
        cold.ready_s, cached.ready_s
    );
    out += &format!(
        "| every method ranks every case | {:.1} s | {:.1} s |\n",
        cold.scored_s, cached.scored_s
    );
    out += &format!(
        "| every case end to end through the twin | {:.1} s | {:.1} s |\n",
        cold.end_to_end_s, cached.end_to_end_s
    );
    out += &format!(
        "| whole `meshtwin eval` | {:.1} s | {:.1} s |\n\n",
        cold.wall_s, cached.wall_s
    );
    let random = summary(report, "all", "random")
        .map(|r| f(r, "avg5"))
        .unwrap_or(f64::NAN);
    out += "Fault start given, all topologies and fault types:\n\n";
    out += "| method | AC@1 | AC@3 | Avg@5 | Avg@5 vs random (same run) | Avg@5 vs Chance@5 | ms per case |\n";
    out += "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for method in &methods {
        if let Some(r) = summary(report, "all", method) {
            out += &format!(
                "| {method} | {:.2} | {:.2} | {:.2} | {:.2}× | {:.2}× | {:.1} |\n",
                f(r, "ac1"),
                f(r, "ac3"),
                f(r, "avg5"),
                f(r, "avg5") / random,
                f(r, "avg5") / f(r, "chance5"),
                f(r, "runtime_ms_per_case")
            );
        }
    }
    let mut faults: Vec<&str> = report["cases"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["fault"].as_str()).collect())
        .unwrap_or_default();
    faults.sort_unstable();
    faults.dedup();
    out += "\nAvg@5 per fault type, all topologies:\n\n| fault | Chance@5 |";
    for method in &methods {
        out += &format!(" {method} |");
    }
    out += &format!("\n| --- | ---: |{}\n", " ---: |".repeat(methods.len()));
    for fault in faults {
        let chance = row(report, "all", fault, methods[0])
            .map(|r| f(r, "chance5"))
            .unwrap_or(f64::NAN);
        out += &format!("| {fault} | {chance:.2} |");
        for method in &methods {
            let avg5 = row(report, "all", fault, method)
                .map(|r| f(r, "avg5"))
                .unwrap_or(f64::NAN);
            out += &format!(" {avg5:.2} |");
        }
        out.push('\n');
    }
    let mut topologies: Vec<&str> = report["cases"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["topology"].as_str()).collect())
        .unwrap_or_default();
    topologies.sort_unstable();
    topologies.dedup();
    out += "\nAvg@5 per topology:\n\n| topology | Chance@5 |";
    for method in &methods {
        out += &format!(" {method} |");
    }
    out += &format!("\n| --- | ---: |{}\n", " ---: |".repeat(methods.len()));
    for topology in topologies {
        let chance = summary(report, topology, methods[0])
            .map(|r| f(r, "chance5"))
            .unwrap_or(f64::NAN);
        out += &format!("| {topology} | {chance:.2} |");
        for method in &methods {
            let avg5 = summary(report, topology, method)
                .map(|r| f(r, "avg5"))
                .unwrap_or(f64::NAN);
            out += &format!(" {avg5:.2} |");
        }
        out.push('\n');
    }
    out
}

/// The report's section whose heading starts with `heading` (end to end,
/// the 200-service timing), its heading made a paragraph so it nests
/// under the benchmark's own heading.
fn section(markdown: &str, heading: &str) -> String {
    let Some(start) = markdown.find(&format!("## {heading}")) else {
        return String::new();
    };
    let section = &markdown[start..];
    let end = section[2..].find("\n## ").map_or(section.len(), |i| i + 3);
    let section = &section[..end];
    let (heading, body) = section.split_once('\n').unwrap_or((section, ""));
    format!(
        "\n{}:\n{}",
        heading.trim_start_matches("## "),
        body.trim_end()
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let busy = match machine::check_idle("eval-bench", args.force) {
        Ok(busy) => busy,
        Err(code) => return code,
    };
    let meshtwin = args
        .meshtwin
        .clone()
        .unwrap_or_else(|| meshtwin_tests::tools::workspace().join("target/release/meshtwin"));
    let scratch = tempfile::tempdir().expect("temp dir");
    let (cache, out) = (scratch.path().join("cache"), scratch.path().join("out"));
    eprintln!(
        "eval-bench: {} eval {} with an empty cache...",
        meshtwin.display(),
        args.suite
    );
    let cold = run(&meshtwin, &args.suite, &cache, &out);
    eprintln!("eval-bench: again, from the cache...");
    let cached = run(&meshtwin, &args.suite, &cache, &out);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).expect("report.json"))
            .expect("a JSON report");
    let mut cases = 0;
    let mut spans = 0;
    for entry in std::fs::read_dir(cache.join(&args.suite))
        .expect("cache dir")
        .flatten()
    {
        if let Ok(text) = std::fs::read(entry.path().join("manifest.json"))
            && let Ok(manifest) = serde_json::from_slice::<Value>(&text)
        {
            cases += 1;
            spans += manifest["spans"].as_u64().unwrap_or(0);
        }
    }
    let mut table = tables(
        &report,
        &cold,
        &cached,
        cases,
        spans,
        meshtwin_tests::tools::bytes_under(&cache, None),
    );
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap_or_default();
    table += &section(&markdown, "End to end");
    table += "\n";
    table += &section(&markdown, "Ranking on a");
    table.push('\n');
    if let Some(reason) = &busy {
        table = format!("**Measured on a busy machine ({reason}); suspect.**\n\n{table}");
    }
    print!("{table}");
    if let Some(path) = &args.record {
        let how = "`scripts/bench-eval` (builds the release binaries, runs `target/release/eval-bench --record BENCHMARKS.md`)";
        if let Err(e) = bench_record::record(path, "eval-bench", how, &table) {
            eprintln!("eval-bench: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
