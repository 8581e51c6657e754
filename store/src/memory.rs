//! Spans kept in memory only (`StoreConfig::memory_only_max_spans`): no
//! log, no segments, lost on restart; the newest spans, up to a limit.

use std::collections::VecDeque;

use arrow_array::RecordBatch;

/// The batches kept, oldest first.
#[derive(Default)]
pub(crate) struct Kept {
    batches: VecDeque<RecordBatch>,
    spans: usize,
}

impl Kept {
    /// Adds `batches`, then drops the oldest while more than `max_spans`
    /// are kept; returns the spans dropped.
    pub(crate) fn keep(&mut self, batches: Vec<RecordBatch>, max_spans: usize) -> usize {
        for batch in batches {
            self.spans += batch.num_rows();
            self.batches.push_back(batch);
        }
        let mut dropped = 0;
        while self.spans > max_spans {
            let Some(oldest) = self.batches.pop_front() else {
                break;
            };
            self.spans -= oldest.num_rows();
            dropped += oldest.num_rows();
        }
        dropped
    }

    /// Every batch kept (the arrays are shared, not copied).
    pub(crate) fn batches(&self) -> Vec<RecordBatch> {
        self.batches.iter().cloned().collect()
    }
}
