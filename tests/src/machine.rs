//! What benchmarks read off the machine: whether it is idle, and a
//! process's CPU time and peak memory from `/proc`.

use std::time::Duration;

/// Linux reports CPU times in clock ticks of 1/100 s (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// Process names that mean a build is running beside the benchmark.
const BUILDERS: [&str; 8] = [
    "rustc", "cargo", "cc1", "cc1plus", "ld", "clang", "rust-lld", "sccache",
];

fn stat_fields(path: &str) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// User + system CPU seconds of a process (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let fields = stat_fields(&format!("/proc/{pid}/stat"))?;
    // After the name: field 3 is index 0, so utime (14) is 11, stime (15) is 12.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// CPU seconds of the calling thread.
pub fn thread_cpu_seconds() -> Option<f64> {
    let fields = stat_fields("/proc/thread-self/stat")?;
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// Peak resident memory of a process in MiB (`VmHWM`).
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(&format!("/proc/{pid}/stat"))?
        .get(1)?
        .parse()
        .ok()
}

/// This process and its ancestors (the `cargo run` that started it).
fn own_lineage() -> Vec<u32> {
    let mut lineage = vec![std::process::id()];
    while let Some(parent) = lineage.last().and_then(|pid| parent_of(*pid)) {
        if parent == 0 || lineage.contains(&parent) {
            break;
        }
        lineage.push(parent);
    }
    lineage
}

fn cpu_totals() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = values.get(3)? + values.get(4).unwrap_or(&0);
    Some((values.iter().sum(), idle))
}

/// Why the machine is not fit for a benchmark, if it is not: a build
/// running (other than the one that started us), or the CPUs busier than
/// 10 % over one second.
/// The idle check every benchmark starts with: `Err` (and a message) when
/// the machine is busy and `force` is not set; otherwise why it is busy,
/// if it is (a warning is printed, and the results must say so).
pub fn check_idle(bench: &str, force: bool) -> Result<Option<String>, std::process::ExitCode> {
    let busy = busy_reason();
    if let Some(reason) = &busy {
        if !force {
            eprintln!(
                "{bench}: refusing to run: {reason}; wait until the machine is idle or pass --force"
            );
            return Err(std::process::ExitCode::from(2));
        }
        eprintln!("{bench}: WARNING: {reason}; running anyway (--force), results are suspect");
    }
    Ok(busy)
}

pub fn busy_reason() -> Option<String> {
    let lineage = own_lineage();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if lineage.contains(&pid) {
                continue;
            }
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let comm = comm.trim();
            if BUILDERS.contains(&comm) {
                return Some(format!("`{comm}` (pid {pid}) is running"));
            }
        }
    }
    let (total_a, idle_a) = cpu_totals()?;
    std::thread::sleep(Duration::from_secs(1));
    let (total_b, idle_b) = cpu_totals()?;
    let total = (total_b - total_a).max(1) as f64;
    let busy = 1.0 - (idle_b - idle_a) as f64 / total;
    (busy > 0.10).then(|| {
        format!(
            "the CPUs were {:.0} % busy over the last second",
            busy * 100.0
        )
    })
}

/// A one-line description of the CPU and core count.
pub fn describe() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {model}")
}
