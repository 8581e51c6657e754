//! How a ranking is scored against the ground truth: AC@k (the share of
//! root causes in the top k), Avg@5 (the mean of AC@1..AC@5), and
//! Chance@5 (the Avg@5 a random order of the same candidates expects).

use serde::{Deserialize, Serialize};

/// One method's result on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseScore {
    pub case: String,
    pub topology: String,
    pub fault: String,
    pub method: String,
    /// AC@1 ..= AC@5.
    pub ac: [f64; 5],
    pub avg5: f64,
    pub chance5: f64,
    pub candidates: usize,
    pub runtime_ms: f64,
    /// The first five of the ranking.
    pub top: Vec<String>,
    pub truth: Vec<String>,
}

/// AC@k for k = 1..=5: with several root causes, the share of them found
/// in the top k (out of at most k).
pub fn accuracy(ranking: &[&str], truth: &[String]) -> [f64; 5] {
    let mut ac = [0.0; 5];
    for (k, slot) in ac.iter_mut().enumerate() {
        let top = &ranking[..ranking.len().min(k + 1)];
        let found = truth.iter().filter(|t| top.contains(&t.as_str())).count();
        *slot = found as f64 / truth.len().min(k + 1).max(1) as f64;
    }
    ac
}

/// Expected Avg@5 of a uniformly random order of `candidates`.
pub fn chance_avg5(candidates: usize, truths: usize) -> f64 {
    if candidates == 0 || truths == 0 {
        return 0.0;
    }
    let n = candidates as f64;
    (1..=5)
        .map(|k| {
            let k_eff = k.min(candidates) as f64;
            let expected_found = truths as f64 * k_eff / n;
            expected_found / truths.min(k) as f64
        })
        .sum::<f64>()
        / 5.0
}

pub fn average(ac: &[f64; 5]) -> f64 {
    ac.iter().sum::<f64>() / 5.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_root_causes_in_the_top_k() {
        let truth = vec!["cart".to_owned()];
        let ac = accuracy(&["frontend", "cart", "ad"], &truth);
        assert_eq!(ac, [0.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(average(&ac), 0.8);
        assert_eq!(accuracy(&["ad"], &truth), [0.0; 5]);
        let two = vec!["cart".to_owned(), "ad".to_owned()];
        assert_eq!(
            accuracy(&["cart", "x", "ad"], &two),
            [1.0, 0.5, 1.0, 1.0, 1.0]
        );
    }

    #[test]
    fn chance_is_what_a_random_order_expects() {
        // One cause among 10: P(top k) = k/10, so Avg@5 = (1+2+3+4+5)/50.
        assert!((chance_avg5(10, 1) - 0.3).abs() < 1e-12);
        assert_eq!(
            chance_avg5(3, 1),
            (1.0 / 3.0 + 2.0 / 3.0 + 1.0 + 1.0 + 1.0) / 5.0
        );
        assert_eq!(chance_avg5(0, 1), 0.0);
    }
}
