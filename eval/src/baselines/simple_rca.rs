//! The "SimpleRCA" rule: per service, flag seconds of the abnormal period
//! whose mean latency or error rate lies more than three standard
//! deviations above the normal period's; rank by the largest excess (in
//! standard deviations).

use crate::baselines::stats::{Periods, Second, mean_std};
use crate::case_data::{CaseData, Name};
use crate::ranker::{Ranker, Window, ranked};

pub struct ThreeSigma;

fn sigmas(normal: &[Second], abnormal: &[Second], signal: fn(&Second) -> Option<f64>) -> f64 {
    let before: Vec<f64> = normal.iter().filter_map(signal).collect();
    let (mean, std) = mean_std(&before);
    abnormal
        .iter()
        .filter_map(signal)
        .map(|x| (x - mean) / std.max(1e-6))
        .fold(0.0, f64::max)
}

impl Ranker for ThreeSigma {
    fn name(&self) -> &'static str {
        "3-sigma"
    }

    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)> {
        let periods = Periods::new(data, window);
        let scores = data
            .candidates()
            .into_iter()
            .map(|service| {
                let (before, after) = periods.of(service);
                let latency = sigmas(before, after, Second::latency_ms);
                let errors = sigmas(before, after, Second::error_rate);
                (service, latency.max(errors))
            })
            .collect();
        ranked(data, scores)
    }
}
