//! What every root-cause method implements, and the windows it is given.

use crate::case_data::{CaseData, Name};

/// The periods a method compares: normal behaviour before the fault, and
/// the abnormal period from its start (given, as RCAEval gives it); the
/// same windows the twin's own ranking takes.
pub use meshtwin_twin::rca::Windows as Window;

/// A root-cause ranking method.
pub trait Ranker: Sync {
    fn name(&self) -> &'static str;

    /// Candidates, most likely cause first, with their scores.
    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)>;
}

/// Sorts by score, highest first, then by name, so ties rank the same way
/// every run; non-finite scores count as 0.
pub fn ranked(data: &CaseData, mut scores: Vec<(Name, f64)>) -> Vec<(Name, f64)> {
    for (_, score) in &mut scores {
        if !score.is_finite() {
            *score = 0.0;
        }
    }
    scores.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| data.names[a.0 as usize].cmp(&data.names[b.0 as usize]))
    });
    scores
}
