//! The benchmark's table: latency per path and rate, what each proxy pair
//! adds over the direct path, CPU per 1,000 requests per proxy, peak RSS,
//! and the targets of issue 3.

use std::fmt::Write;

use crate::oha::Latency;
use crate::paths::{BODY_BYTES, BenchPath, ONE_THREAD};
use meshtwin_tests::stats::median;

/// One path at one rate, over every round.
pub(crate) struct Measured {
    rate: u32,
    path: &'static str,
    /// Median over rounds of each percentile.
    latency: Latency,
    /// Each round's p99, in round order.
    round_p99: Vec<f64>,
    /// (label, CPU seconds per 1,000 requests, peak RSS MiB) per proxy.
    proxies: Vec<(String, f64, f64)>,
    requests: u64,
    non_200: u64,
}

impl Measured {
    pub(crate) fn from_runs(
        rate: u32,
        path: &BenchPath,
        runs: Vec<(Latency, Vec<f64>)>,
        rss: Vec<f64>,
    ) -> Self {
        let of = |f: fn(&Latency) -> f64| median(runs.iter().map(|(l, _)| f(l)).collect());
        let requests: u64 = runs.iter().map(|(l, _)| l.requests).sum();
        let non_200 = runs.iter().map(|(l, _)| l.non_200).sum();
        let proxies = path
            .proxies
            .iter()
            .enumerate()
            .map(|(i, (label, _))| {
                let cpu: f64 = runs.iter().map(|(_, cpu)| cpu[i]).sum();
                let per_1k = cpu / (requests.max(1) as f64 / 1000.0);
                (label.clone(), per_1k, rss[i])
            })
            .collect();
        Self {
            rate,
            path: path.name,
            round_p99: runs.iter().map(|(l, _)| l.p99).collect(),
            latency: Latency {
                p50: of(|l| l.p50),
                p90: of(|l| l.p90),
                p99: of(|l| l.p99),
                p999: of(|l| l.p999),
                requests,
                non_200,
            },
            proxies,
            requests,
            non_200,
        }
    }

    fn mean_cpu(&self) -> Option<f64> {
        (!self.proxies.is_empty()).then(|| {
            self.proxies.iter().map(|(_, cpu, _)| cpu).sum::<f64>() / self.proxies.len() as f64
        })
    }

    /// The largest peak RSS of the path's proxies, MiB.
    fn peak_rss(&self) -> f64 {
        self.proxies
            .iter()
            .map(|(_, _, rss)| *rss)
            .fold(0.0, f64::max)
    }
}

fn ms(value: f64) -> String {
    format!("{value:.3}")
}

fn added(value: f64) -> String {
    format!("{:+.0} µs", value * 1000.0)
}

pub(crate) fn report(
    measured: &[Measured],
    rates: &[u32],
    seconds: u64,
    rounds: usize,
    busy: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "nginx answering {BODY_BYTES} B over HTTP/1.1 keep-alive; `oha --latency-correction` at a fixed rate, \
         {seconds} s per run, {rounds} rounds per rate with the paths interleaved; medians of the rounds' percentiles. \
         2 cores, every process on the same machine."
    );
    if let Some(reason) = busy {
        let _ = writeln!(
            out,
            "\n**The machine was busy ({reason}); these numbers are suspect.**"
        );
    }
    let _ = writeln!(
        out,
        "\n| rate/s | path | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 | added p90 | added p99 | added p99.9 | CPU s per 1k req per proxy | peak RSS MiB per proxy | non-200 |"
    );
    let _ = writeln!(
        out,
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |"
    );
    for &rate in rates {
        let at_rate: Vec<&Measured> = measured.iter().filter(|m| m.rate == rate).collect();
        let Some(direct) = at_rate.iter().find(|m| m.proxies.is_empty()) else {
            continue;
        };
        for m in &at_rate {
            let l = &m.latency;
            let d = &direct.latency;
            let (a50, a90, a99, a999) = if m.proxies.is_empty() {
                (
                    "–".to_owned(),
                    "–".to_owned(),
                    "–".to_owned(),
                    "–".to_owned(),
                )
            } else {
                (
                    added(l.p50 - d.p50),
                    added(l.p90 - d.p90),
                    added(l.p99 - d.p99),
                    added(l.p999 - d.p999),
                )
            };
            let cpu = m
                .proxies
                .iter()
                .map(|(label, cpu, _)| format!("{label} {cpu:.3}"))
                .collect::<Vec<_>>()
                .join(", ");
            let rss = m
                .proxies
                .iter()
                .map(|(label, _, rss)| format!("{label} {rss:.1}"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| {rate} | {} | {} | {} | {} | {} | {a50} | {a90} | {a99} | {a999} | {} | {} | {} of {} |",
                m.path,
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.p999),
                if cpu.is_empty() {
                    "–".to_owned()
                } else {
                    cpu
                },
                if rss.is_empty() {
                    "–".to_owned()
                } else {
                    rss
                },
                m.non_200,
                m.requests
            );
        }
    }
    let _ = writeln!(
        out,
        "\nTargets (issue 3): meshtwin's added p99 (telemetry on) at most the HAProxy pair's (ratio ≤ 1.0) and ≤ 0.3 ms at 1,000/s; ≤ 0.08 CPU s per 1,000 requests per proxy (= vCPU per 1,000 rps per hop) with telemetry on; peak RSS ≤ 15 MiB per proxy.\n"
    );
    for &rate in rates {
        let find = |prefix: &str| {
            measured
                .iter()
                .find(|m| m.rate == rate && m.path.starts_with(prefix))
        };
        let (Some(direct), Some(haproxy), Some(ours), Some(quiet)) = (
            find("direct"),
            find("HAProxy"),
            find("meshtwin pair (mTLS, telemetry on)"),
            find("meshtwin pair (mTLS, telemetry off)"),
        ) else {
            continue;
        };
        let ours_added = ours.latency.p99 - direct.latency.p99;
        let haproxy_added = haproxy.latency.p99 - direct.latency.p99;
        let ratio = if haproxy_added > 0.0 {
            format!("{:.2}", ours_added / haproxy_added)
        } else {
            "n/a (HAProxy added nothing measurable)".to_owned()
        };
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        let ratio_ok = haproxy_added > 0.0 && ours_added <= haproxy_added;
        let _ = writeln!(
            out,
            "- {rate}/s: added p99 meshtwin {} vs HAProxy {} → ratio {ratio} ({}){}",
            added(ours_added),
            added(haproxy_added),
            verdict(ratio_ok),
            if rate == 1000 {
                format!("; ≤ 0.3 ms: {}", verdict(ours_added <= 0.3))
            } else {
                String::new()
            }
        );
        // Paths run back to back within a round, so a round's added p99 is
        // a paired difference; its spread shows the run-to-run noise.
        let per_round = |m: &Measured| {
            m.round_p99
                .iter()
                .zip(&direct.round_p99)
                .map(|(p99, direct)| added(p99 - direct))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "  - added p99 round by round: meshtwin {}; HAProxy {}",
            per_round(ours),
            per_round(haproxy)
        );
        if let Some(single) = find(ONE_THREAD) {
            let single_added = single.latency.p99 - direct.latency.p99;
            let _ = writeln!(
                out,
                "  - one serving thread per proxy instead: added p99 {} (ratio {}), CPU {:.3} s per 1k requests per proxy, peak RSS {:.1} MiB",
                added(single_added),
                if haproxy_added > 0.0 {
                    format!("{:.2}", single_added / haproxy_added)
                } else {
                    "n/a".to_owned()
                },
                single.mean_cpu().unwrap_or(0.0),
                single.peak_rss()
            );
        }
        let cpu = ours.mean_cpu().unwrap_or(0.0);
        let rss = ours.peak_rss();
        let _ = writeln!(
            out,
            "  - CPU {cpu:.3} s per 1k requests per proxy ({}); telemetry costs {:+.3}; HAProxy {:.3}; peak RSS {rss:.1} MiB ({})",
            verdict(cpu <= 0.08),
            cpu - quiet.mean_cpu().unwrap_or(0.0),
            haproxy.mean_cpu().unwrap_or(0.0),
            verdict(rss <= 15.0)
        );
    }
    out
}
