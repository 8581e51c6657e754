//! The harness's output: per-case scores, their means per topology ×
//! fault type and overall, as JSON and as Markdown tables.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use crate::score::CaseScore;

/// Means over a group of cases, for one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// A topology name, or `all`.
    pub topology: String,
    /// A fault type, or `all`.
    pub fault: String,
    pub method: String,
    pub cases: usize,
    pub ac1: f64,
    pub ac3: f64,
    pub avg5: f64,
    pub chance5: f64,
    pub runtime_ms_per_case: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub suite: String,
    pub mode: String,
    pub methods: Vec<String>,
    pub summary: Vec<SummaryRow>,
    pub cases: Vec<CaseScore>,
    /// Cases not scored by a service ranking, and why.
    pub unscored: Vec<(String, String)>,
    pub calibration: Option<crate::calibration::Calibration>,
    /// One ranking's time on a 200-service graph.
    pub scale: Option<crate::scale::Scale>,
    /// The twin's graph of each topology against its spans.
    pub graph_checks: Vec<crate::twin_check::GraphCheck>,
    /// Every case end to end through the twin's detectors and incidents.
    pub detection: Option<crate::detection::DetectionSummary>,
}

fn summarise(topology: &str, fault: &str, method: &str, scores: &[&CaseScore]) -> SummaryRow {
    let n = scores.len().max(1) as f64;
    let mean = |f: &dyn Fn(&CaseScore) -> f64| scores.iter().map(|s| f(s)).sum::<f64>() / n;
    SummaryRow {
        topology: topology.to_owned(),
        fault: fault.to_owned(),
        method: method.to_owned(),
        cases: scores.len(),
        ac1: mean(&|s| s.ac[0]),
        ac3: mean(&|s| s.ac[2]),
        avg5: mean(&|s| s.avg5),
        chance5: mean(&|s| s.chance5),
        runtime_ms_per_case: mean(&|s| s.runtime_ms),
    }
}

impl Report {
    pub fn new(
        suite: &str,
        methods: Vec<String>,
        cases: Vec<CaseScore>,
        unscored: Vec<(String, String)>,
    ) -> Self {
        let mut groups: BTreeMap<(String, String, String), Vec<&CaseScore>> = BTreeMap::new();
        for score in &cases {
            for (topology, fault) in [
                (score.topology.as_str(), score.fault.as_str()),
                (score.topology.as_str(), "all"),
                ("all", score.fault.as_str()),
                ("all", "all"),
            ] {
                groups
                    .entry((topology.to_owned(), fault.to_owned(), score.method.clone()))
                    .or_default()
                    .push(score);
            }
        }
        let summary = groups
            .iter()
            .map(|((topology, fault, method), scores)| summarise(topology, fault, method, scores))
            .collect();
        Self {
            suite: suite.to_owned(),
            mode: "fault start given".to_owned(),
            methods,
            summary,
            cases,
            unscored,
            calibration: None,
            scale: None,
            graph_checks: Vec::new(),
            detection: None,
        }
    }

    fn row(&self, topology: &str, fault: &str, method: &str) -> Option<&SummaryRow> {
        self.summary
            .iter()
            .find(|r| r.topology == topology && r.fault == fault && r.method == method)
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let cases: usize = self
            .row("all", "all", &self.methods[0])
            .map_or(0, |r| r.cases);
        let _ = writeln!(
            out,
            "# `{}` suite, {} ({cases} scored cases)\n",
            self.suite, self.mode
        );
        let _ = writeln!(
            out,
            "| method | AC@1 | AC@3 | Avg@5 | Chance@5 | ms per case |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: |");
        for method in &self.methods {
            if let Some(r) = self.row("all", "all", method) {
                let _ = writeln!(
                    out,
                    "| {method} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
                    r.ac1, r.ac3, r.avg5, r.chance5, r.runtime_ms_per_case
                );
            }
        }
        let topologies: Vec<&str> = {
            let mut t: Vec<&str> = self.cases.iter().map(|c| c.topology.as_str()).collect();
            t.sort_unstable();
            t.dedup();
            t.insert(0, "all");
            t
        };
        for topology in topologies {
            let title = if topology == "all" {
                "All topologies, per fault type"
            } else {
                topology
            };
            let _ = writeln!(out, "\n## {title}\n\nAC@1 / AC@3 / Avg@5 per method.\n");
            let _ = write!(out, "| fault | cases | Chance@5 |");
            for method in &self.methods {
                let _ = write!(out, " {method} |");
            }
            let _ = write!(out, "\n| --- | ---: | ---: |");
            let _ = writeln!(out, "{}", " ---: |".repeat(self.methods.len()));
            let mut faults: Vec<&str> = self
                .cases
                .iter()
                .filter(|c| topology == "all" || c.topology == topology)
                .map(|c| c.fault.as_str())
                .collect();
            faults.sort_unstable();
            faults.dedup();
            faults.push("all");
            for fault in faults {
                let Some(first) = self.row(topology, fault, &self.methods[0]) else {
                    continue;
                };
                let _ = write!(out, "| {fault} | {} | {:.2} |", first.cases, first.chance5);
                for method in &self.methods {
                    if let Some(r) = self.row(topology, fault, method) {
                        let _ = write!(out, " {:.2} / {:.2} / {:.2} |", r.ac1, r.ac3, r.avg5);
                    }
                }
                out.push('\n');
            }
        }
        if !self.unscored.is_empty() {
            let _ = writeln!(out, "\n## Not scored by ranking\n");
            for (case, why) in &self.unscored {
                let _ = writeln!(out, "- `{case}`: {why}");
            }
        }
        if let Some(calibration) = &self.calibration {
            out += &calibration.markdown();
        }
        if !self.graph_checks.is_empty() {
            out += &crate::twin_check::markdown(&self.graph_checks);
        }
        if let Some(detection) = &self.detection {
            out += &detection.markdown();
        }
        if let Some(scale) = &self.scale {
            out += &scale.markdown();
        }
        out
    }
}
