//! The floor: candidates in a random order, seeded per case.

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;

use crate::case_data::{CaseData, Name};
use crate::ranker::{Ranker, Window};

pub struct RandomRanker;

impl Ranker for RandomRanker {
    fn name(&self) -> &'static str {
        "random"
    }

    fn rank(&self, data: &CaseData, window: &Window) -> Vec<(Name, f64)> {
        let mut candidates = data.candidates();
        let mut rng = ChaCha8Rng::seed_from_u64(window.abnormal.0 ^ data.spans.len() as u64);
        candidates.shuffle(&mut rng);
        let n = candidates.len() as f64;
        candidates
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, n - i as f64))
            .collect()
    }
}
