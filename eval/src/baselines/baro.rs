//! BARO-style multi-source robust scoring (Pham et al., FSE 2024): every
//! series of a service — span latency, error count and request count per
//! second, and its metrics (CPU, memory, latency histograms) — is scaled
//! by the normal period's median and inter-quartile range; a service
//! scores the largest scaled deviation any of its series reaches in the
//! abnormal period.

use foldhash::HashMap;

use crate::baselines::stats::{Periods, Second, median_iqr};
use crate::case_data::{CaseData, Name};
use crate::ranker::{Ranker, Window, ranked};

pub struct Baro;

/// Largest robust z-score of `abnormal` against `normal`. A zero
/// inter-quartile range scales by 1, as scikit-learn's RobustScaler does.
fn robust_deviation(normal: &[f64], abnormal: &[f64]) -> f64 {
    if normal.is_empty() {
        return 0.0;
    }
    let (median, iqr) = median_iqr(normal);
    let scale = if iqr > 0.0 { iqr } else { 1.0 };
    abnormal
        .iter()
        .map(|x| (x - median).abs() / scale)
        .fold(0.0, f64::max)
}

fn span_series(seconds: &[Second]) -> [Vec<f64>; 3] {
    [
        seconds.iter().filter_map(Second::latency_ms).collect(),
        seconds.iter().map(|s| s.errors as f64).collect(),
        seconds.iter().map(|s| s.count as f64).collect(),
    ]
}

impl Ranker for Baro {
    fn name(&self) -> &'static str {
        "BARO"
    }

    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)> {
        let periods = Periods::new(data, window);
        // Metric series per (service, metric): the worst instance per time.
        let mut metrics: HashMap<(Name, Name), (Vec<f64>, Vec<f64>)> = HashMap::default();
        let mut worst: HashMap<(Name, Name, u64), f64> = HashMap::default();
        for row in &data.metrics {
            let slot = worst
                .entry((row.service, row.metric, row.time))
                .or_insert(f64::MIN);
            *slot = slot.max(row.value);
        }
        let mut points: Vec<_> = worst.into_iter().collect();
        points.sort_by_key(|((s, m, t), _)| (*s, *m, *t));
        for ((service, metric, time), value) in points {
            let series = metrics.entry((service, metric)).or_default();
            if window.in_normal(time) {
                series.0.push(value);
            } else if window.in_abnormal(time) {
                series.1.push(value);
            }
        }
        let scores = data
            .candidates()
            .into_iter()
            .map(|service| {
                let (before, after) = periods.of(service);
                let from_spans = span_series(before)
                    .iter()
                    .zip(span_series(after).iter())
                    .map(|(b, a)| robust_deviation(b, a))
                    .fold(0.0, f64::max);
                let from_metrics = metrics
                    .iter()
                    .filter(|((s, _), _)| *s == service)
                    .map(|(_, (b, a))| robust_deviation(b, a))
                    .fold(0.0, f64::max);
                (service, from_spans.max(from_metrics))
            })
            .collect();
        ranked(data, scores)
    }
}
