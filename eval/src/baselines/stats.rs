//! Per-second series per service, and the location / scale estimates the
//! baselines use.

use foldhash::HashMap;

use crate::case_data::{CaseData, Name};

/// One second of one service's work.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Second {
    pub(crate) count: u64,
    pub(crate) errors: u64,
    pub(crate) latency_sum_ms: f64,
}

impl Second {
    pub(crate) fn latency_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.latency_sum_ms / self.count as f64)
    }

    pub(crate) fn error_rate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.errors as f64 / self.count as f64)
    }
}

/// Per service, one bucket per second of `[from, to)`, by span end time.
pub(crate) fn per_second(data: &CaseData, from: u64, to: u64) -> HashMap<Name, Vec<Second>> {
    let seconds = (to.saturating_sub(from)).div_ceil(1_000_000_000) as usize;
    let mut series: HashMap<Name, Vec<Second>> = HashMap::default();
    for span in &data.spans {
        if span.end < from || span.end >= to {
            continue;
        }
        let Some(worker) = span.worker(&data.reports_spans) else {
            continue;
        };
        let buckets = series
            .entry(worker)
            .or_insert_with(|| vec![Second::default(); seconds]);
        let bucket = &mut buckets[((span.end - from) / 1_000_000_000) as usize];
        bucket.count += 1;
        bucket.errors += u64::from(span.error);
        bucket.latency_sum_ms += span.duration() as f64 / 1e6;
    }
    series
}

/// Per-second work of every service in the normal and abnormal periods.
pub(crate) struct Periods {
    normal: HashMap<Name, Vec<Second>>,
    abnormal: HashMap<Name, Vec<Second>>,
}

impl Periods {
    pub(crate) fn new(data: &CaseData, window: &crate::ranker::Window) -> Self {
        Self {
            normal: per_second(data, window.normal.0, window.normal.1),
            abnormal: per_second(data, window.abnormal.0, window.abnormal.1),
        }
    }

    /// `(normal, abnormal)` seconds of `service` (empty if it did no work).
    pub(crate) fn of(&self, service: Name) -> (&[Second], &[Second]) {
        fn get(m: &HashMap<Name, Vec<Second>>, service: Name) -> &[Second] {
            m.get(&service).map(Vec::as_slice).unwrap_or_default()
        }
        (get(&self.normal, service), get(&self.abnormal, service))
    }
}

pub(crate) fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, variance.sqrt())
}

/// The `q` quantile by linear interpolation; 0 for no values.
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

pub(crate) fn median_iqr(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = quantile(&sorted, 0.5);
    (median, quantile(&sorted, 0.75) - quantile(&sorted, 0.25))
}
