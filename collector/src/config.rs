//! Receiver settings.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// Largest request accepted, in bytes, before and after decompression.
    pub max_request_bytes: usize,
    /// How many span batches may wait for the twin before senders are told
    /// to retry.
    pub queue_batches: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 8 * 1024 * 1024,
            queue_batches: 1024,
        }
    }
}

impl CollectorConfig {
    /// Every problem with these settings, prefixed with `prefix`.
    pub fn problems(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if !(1024..=256 * 1024 * 1024).contains(&self.max_request_bytes) {
            problems.push(format!(
                "{prefix}max_request_bytes: must be between 1024 and 268435456"
            ));
        }
        if !(1..=1_000_000).contains(&self.queue_batches) {
            problems.push(format!(
                "{prefix}queue_batches: must be between 1 and 1000000"
            ));
        }
        problems
    }
}
