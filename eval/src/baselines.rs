//! The published methods meshtwin's ranking is scored against, written
//! in Rust from their papers' descriptions.

mod baro;
mod microrank;
mod random;
mod simple_rca;
mod stats;
mod tracerca;
pub(crate) mod traces;

pub use baro::Baro;
pub use microrank::MicroRank;
pub use random::RandomRanker;
pub use simple_rca::ThreeSigma;
pub(crate) use stats::quantile as stats_quantile;
pub use tracerca::TraceRca;

use crate::ranker::Ranker;

/// Every baseline, in report order.
pub fn all() -> Vec<Box<dyn Ranker>> {
    vec![
        Box::new(RandomRanker),
        Box::new(ThreeSigma),
        Box::new(Baro),
        Box::new(MicroRank),
        Box::new(TraceRca),
    ]
}
