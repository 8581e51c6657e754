//! One hour's rows on their way to a segment, as Arrow batches of at most
//! [`CHUNK_ROWS`]: builders that small stay in cache, and each is sized
//! from the last, so none of them grows while it fills.

use arrow_array::RecordBatch;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::rows::{Reporter, SpanRows, TextPerRow};

/// Rows per batch.
pub(crate) const CHUNK_ROWS: usize = 8192;

pub(crate) struct SpanChunks {
    done: Vec<RecordBatch>,
    open: SpanRows,
    /// What the last batch held per row, for sizing the next.
    pub(crate) text: TextPerRow,
    pub(crate) len: usize,
    pub(crate) max_end: u64,
}

impl SpanChunks {
    /// Empty; `text` (from earlier batches) sizes the builders.
    pub(crate) fn new(text: Option<TextPerRow>) -> Self {
        let open = match &text {
            Some(text) => SpanRows::with_capacity(CHUNK_ROWS, text),
            None => SpanRows::default(),
        };
        Self {
            done: Vec::new(),
            open,
            text: text.unwrap_or_default(),
            len: 0,
            max_end: 0,
        }
    }

    pub(crate) fn push(&mut self, reporter: &Reporter, span: &Span) {
        self.open.push(reporter, span);
        self.len += 1;
        self.max_end = self.max_end.max(span.end_time_unix_nano);
        if self.open.len >= CHUNK_ROWS {
            self.seal();
        }
    }

    fn seal(&mut self) {
        self.text = self.open.text_per_row();
        let next = SpanRows::with_capacity(CHUNK_ROWS, &self.text);
        let mut full = std::mem::replace(&mut self.open, next);
        self.done.push(full.finish());
    }

    /// Every row, in batches.
    pub(crate) fn finish(mut self) -> Vec<RecordBatch> {
        if self.open.len > 0 {
            self.done.push(self.open.finish());
        }
        self.done
    }
}
