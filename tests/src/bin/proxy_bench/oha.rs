//! Fixed-rate load from `oha` (`-q RATE --latency-correction`): latency is
//! measured from when each request was due, not when it was sent, so a
//! stall shows in the percentiles instead of hiding (no coordinated
//! omission).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Latency percentiles in milliseconds, and what was sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub(crate) requests: u64,
    pub non_200: u64,
}

/// Runs oha against `url` at `rate` requests/s for `duration`.
pub(crate) fn run(
    oha: &Path,
    url: &str,
    rate: u32,
    duration: Duration,
    connections: u32,
) -> Result<Latency, String> {
    let output = Command::new(oha)
        .args([
            "--no-tui",
            "--output-format",
            "json",
            "--latency-correction",
        ])
        .args(["-q", &rate.to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-z", &format!("{}s", duration.as_secs())])
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", oha.display()))?;
    if !output.status.success() {
        return Err(format!(
            "oha failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("oha's output is not JSON: {e}"))?;
    let percentile = |key: &str| {
        json["latencyPercentiles"][key]
            .as_f64()
            .map(|seconds| seconds * 1000.0)
            .ok_or_else(|| {
                format!(
                    "no latencies from {url} (status codes {}, errors {})",
                    json["statusCodeDistribution"], json["errorDistribution"]
                )
            })
    };
    let codes = json["statusCodeDistribution"]
        .as_object()
        .ok_or("oha's output lacks statusCodeDistribution")?;
    let count = |code: Option<&str>| -> u64 {
        codes
            .iter()
            .filter(|(c, _)| code.is_none_or(|wanted| c.as_str() == wanted))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    };
    // Requests still in flight when the run's time is up are cut off by
    // oha itself ("aborted due to deadline"); they are not failures.
    let errors: u64 = json["errorDistribution"]
        .as_object()
        .map(|e| {
            e.iter()
                .filter(|(kind, _)| !kind.contains("aborted due to deadline"))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
        .unwrap_or(0);
    let all = count(None);
    Ok(Latency {
        p50: percentile("p50")?,
        p90: percentile("p90")?,
        p99: percentile("p99")?,
        p999: percentile("p99.9")?,
        requests: all + errors,
        non_200: all - count(Some("200")) + errors,
    })
}
