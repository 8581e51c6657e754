//! The results table, the targets check, and recording into BENCHMARKS.md.

use std::path::Path;

use meshtwin_tests::machine;

use super::{Args, Row, SPANS_PER_REQUEST};

pub(crate) fn report(
    rows: &[Row],
    spans: usize,
    bytes: usize,
    args: &Args,
    busy: Option<&str>,
) -> String {
    let decode = &rows[0];
    let rotel = |transport: &str| {
        rows.iter()
            .find(|r| r.system.starts_with("rotel") && r.transport == transport)
    };
    let mut out = String::new();
    out.push_str(&format!(
        "Ingest of {spans} Online Boutique spans in requests of {SPANS_PER_REQUEST} ({:.0} bytes per span), \
         {} in flight; {}.\n",
        bytes as f64 / spans as f64,
        args.concurrency,
        machine::describe()
    ));
    if let Some(reason) = busy {
        out.push_str(&format!(
            "\n**Machine was busy ({reason}): these numbers are suspect.**\n"
        ));
    }
    out.push_str(&format!(
        "\nMedian of {} runs per system and transport, each against a fresh process; decode-only is the best of 3 passes.\n",
        args.repeat.max(1)
    ));
    out.push_str(
        "\n| system | transport | CPU µs/span (range) | spans/s per core | wall spans/s | peak RSS MiB | CPU vs decode-only | per-core throughput vs rotel | retries | Parquet bytes/span |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let vs_rotel = rotel(row.transport)
            .filter(|_| row.system.starts_with("meshtwin"))
            .map(|r| {
                format!(
                    "{:.2}×",
                    row.spans_per_core_second() / r.spans_per_core_second()
                )
            })
            .unwrap_or_else(|| "–".to_owned());
        let range = if row.range.1 > 0.0 {
            format!(" ({:.2}–{:.2})", row.range.0, row.range.1)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} | {} | {:.2}{range} | {:.0} | {:.0} | {} | {:.2}× | {} | {} | {} |\n",
            row.system,
            row.transport,
            row.micros_per_span(),
            row.spans_per_core_second(),
            row.spans as f64 / row.wall,
            row.peak_rss_mib
                .map_or("–".to_owned(), |m| format!("{m:.0}")),
            row.micros_per_span() / decode.micros_per_span(),
            vs_rotel,
            row.retries,
            row.disk_bytes_per_span
                .map_or("–".to_owned(), |b| format!("{b:.1}")),
        ));
    }
    out.push_str("\nTargets (issue 2): at most 2.5 µs of CPU per span with the twin updating, and at least rotel's throughput.\n\n");
    for row in rows.iter().filter(|r| r.system.starts_with("meshtwin")) {
        let cpu_ok = row.micros_per_span() <= 2.5;
        let rotel_ok = rotel(row.transport)
            .is_some_and(|r| row.spans_per_core_second() >= r.spans_per_core_second());
        out.push_str(&format!(
            "- {}, {}: {:.2} µs/span ({}), {:.2}× rotel per core ({})\n",
            row.system,
            row.transport,
            row.micros_per_span(),
            if cpu_ok { "met" } else { "NOT met" },
            rotel(row.transport).map_or(0.0, |r| row.spans_per_core_second()
                / r.spans_per_core_second()),
            if rotel_ok { "met" } else { "NOT met" },
        ));
    }
    let store = |transport: &str, label: &str| {
        rows.iter()
            .find(|r| r.transport == transport && r.system.ends_with(&format!("{label})")))
    };
    let mut target = String::new();
    for transport in ["OTLP/gRPC", "OTLP/HTTP"] {
        let share = |of: &str| {
            let on = store(transport, "store on")?;
            Some(on.spans_per_core_second() / store(transport, of)?.spans_per_core_second())
        };
        let (Some(on_disk), off) = (share("store in memory"), share("store off")) else {
            continue;
        };
        target.push_str(&format!(
            "- {transport}: {:.0} % of the in-memory figure ({}){}\n",
            on_disk * 100.0,
            if on_disk >= 0.7 { "met" } else { "NOT met" },
            off.map_or(String::new(), |off| format!(
                "; {:.0} % of store off",
                off * 100.0
            )),
        ));
    }
    if !target.is_empty() {
        out.push_str("\nTarget (issue 5): with persistence on (store on: log and Parquet), at least 70 % of the per-core throughput of the in-memory figure (store in memory: the same rows, kept in memory) in the same run. The share of store off (no spans kept, the twin alone) is shown beside it.\n\n");
        out.push_str(&target);
    }
    out
}

pub(crate) fn record(path: &Path, report: &str) -> std::io::Result<()> {
    meshtwin_tests::bench_record::record(
        path,
        "ingest-bench",
        "`scripts/bench-ingest` (installs rotel with pip, builds the release \
         binaries, runs `target/release/ingest-bench --record BENCHMARKS.md`)",
        report,
    )
}
