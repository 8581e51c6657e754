//! Does the simulated Online Boutique behave like the real one? Checks a
//! fault-free run against the application's published request mix: the
//! busiest edge, the currency conversions per home page, the frontend's
//! page mix, and latency quantiles per service in a plausible range.

use std::collections::BTreeMap;

use foldhash::HashSet;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde::{Deserialize, Serialize};

use crate::baselines::stats_quantile;
use crate::case_data::CaseData;

/// One check and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub measured: String,
    pub holds: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub seconds: f64,
    pub checks: Vec<Check>,
    /// `caller -> callee`: requests per second, busiest first.
    pub edge_rates: Vec<(String, f64)>,
    /// Per service: p50 and p99 of its SERVER spans, in ms.
    pub latency_ms: BTreeMap<String, (f64, f64)>,
}

/// The fault-free Online Boutique run the check reads.
pub fn case() -> meshtwin_datasets::suite::Case {
    meshtwin_datasets::suite::Case {
        name: "online-boutique.calibration".to_owned(),
        kind: meshtwin_datasets::suite::CaseKind::FaultFree,
        topology: "online-boutique".to_owned(),
        fault: "fault_free".to_owned(),
        spec: meshtwin_datasets::dataset::CaseSpec {
            topology: "online-boutique".to_owned(),
            duration_s: 300.0,
            options: meshtwin_datasets::sim::SimOptions::default(),
        },
    }
}

impl Calibration {
    pub fn holds(&self) -> bool {
        self.checks.iter().all(|c| c.holds)
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "\n## Calibration: Online Boutique, {:.0} s fault-free\n\n\
             | check | expected | measured | holds |\n| --- | --- | --- | --- |\n",
            self.seconds
        );
        for c in &self.checks {
            let mark = if c.holds { "yes" } else { "**NO**" };
            out += &format!(
                "| {} | {} | {} | {mark} |\n",
                c.what, c.expected, c.measured
            );
        }
        out += "\nBusiest edges (requests/s): ";
        let top: Vec<String> = self
            .edge_rates
            .iter()
            .take(5)
            .map(|(e, r)| format!("{e} {r:.1}"))
            .collect();
        out += &top.join(", ");
        out.push('\n');
        out
    }
}

/// The load generator's page weights in Online Boutique's locustfile.
const PAGE_MIX: [(&str, f64); 6] = [
    ("GET /", 1.0),
    ("POST /setCurrency", 2.0),
    ("GET /product/{id}", 10.0),
    ("POST /cart", 2.0),
    ("GET /cart", 3.0),
    ("POST /cart/checkout", 1.0),
];

fn check(what: &str, expected: String, measured: String, holds: bool) -> Check {
    Check {
        what: what.to_owned(),
        expected,
        measured,
        holds,
    }
}

pub fn online_boutique(data: &CaseData) -> Calibration {
    let seconds = (data.end_unix_nano - data.start_unix_nano) as f64 / 1e9;
    let name = |n: u32| data.names[n as usize].as_str();
    let mut edges: BTreeMap<String, f64> = BTreeMap::new();
    let mut pages: BTreeMap<&str, f64> = BTreeMap::new();
    let mut home_pages: HashSet<(u128, u64)> = HashSet::default();
    let mut durations: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for span in &data.spans {
        match span.kind {
            SpanKind::Client => {
                if let Some(peer) = span.peer {
                    *edges
                        .entry(format!("{} -> {}", name(span.service), name(peer)))
                        .or_default() += 1.0;
                }
            }
            SpanKind::Server => {
                durations
                    .entry(name(span.service))
                    .or_default()
                    .push(span.duration() as f64 / 1e6);
                if name(span.service) == "frontend" {
                    *pages.entry(name(span.operation)).or_default() += 1.0;
                    if name(span.operation) == "GET /" {
                        home_pages.insert((span.trace, span.span));
                    }
                }
            }
            _ => {}
        }
    }
    let conversions = data
        .spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client && name(s.operation).ends_with("/Convert"))
        .filter(|s| home_pages.contains(&(s.trace, s.parent)))
        .count() as f64;
    let per_home_page = conversions / home_pages.len().max(1) as f64;

    let mut edge_rates: Vec<(String, f64)> =
        edges.into_iter().map(|(e, n)| (e, n / seconds)).collect();
    edge_rates.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let busiest = edge_rates.first().map(|e| e.0.clone()).unwrap_or_default();

    let mut checks = vec![
        check(
            "busiest edge",
            "frontend -> productcatalog".to_owned(),
            busiest.clone(),
            busiest == "frontend -> productcatalog",
        ),
        check(
            "currency conversions per home page",
            "about 9 (one per product on the page)".to_owned(),
            format!("{per_home_page:.2} over {} home pages", home_pages.len()),
            (8.0..=10.0).contains(&per_home_page),
        ),
    ];
    let total_pages: f64 = pages.values().sum();
    let total_weight: f64 = PAGE_MIX.iter().map(|(_, w)| w).sum();
    for (page, weight) in PAGE_MIX {
        let expected = weight / total_weight;
        let measured = pages.get(page).copied().unwrap_or(0.0) / total_pages.max(1.0);
        check_push(&mut checks, page, expected, measured);
    }
    let mut latency_ms = BTreeMap::new();
    for (service, mut values) in durations {
        values.sort_by(f64::total_cmp);
        let (p50, p99) = (stats_quantile(&values, 0.5), stats_quantile(&values, 0.99));
        checks.push(check(
            &format!("{service} latency"),
            "p50 0.1–300 ms, p99 ≤ 2 s".to_owned(),
            format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
            (0.1..=300.0).contains(&p50) && p99 >= p50 && p99 <= 2_000.0,
        ));
        latency_ms.insert(service.to_owned(), (p50, p99));
    }
    Calibration {
        seconds,
        checks,
        edge_rates,
        latency_ms,
    }
}

/// A page's share of frontend requests, within 30 % of its weight.
fn check_push(checks: &mut Vec<Check>, page: &str, expected: f64, measured: f64) {
    checks.push(check(
        &format!("share of {page}"),
        format!("{:.1} %", expected * 100.0),
        format!("{:.1} %", measured * 100.0),
        (measured - expected).abs() <= 0.3 * expected,
    ));
}
