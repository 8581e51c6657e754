//! Writing a benchmark's table into `BENCHMARKS.md`, between markers of
//! its own, so that each benchmark replaces only its section.

use std::path::Path;
use std::process::Command;

/// Replaces the section between `<!-- {name}:begin -->` and
/// `<!-- {name}:end -->` (or appends one), saying when it was measured and
/// `how`.
pub fn record(path: &Path, name: &str, how: &str, report: &str) -> std::io::Result<()> {
    let (begin, end) = (
        format!("<!-- {name}:begin -->"),
        format!("<!-- {name}:end -->"),
    );
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let section = format!("{begin}\nMeasured {date} with {how}.\n\n{report}{end}");
    let updated = match (existing.find(&begin), existing.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{section}{}", &existing[..b], &existing[e + end.len()..])
        }
        _ => format!("{existing}\n{section}\n"),
    };
    std::fs::write(path, updated)
}
