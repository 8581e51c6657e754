//! The trace context a request carries.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TraceCtx {
    pub trace_id: u128,
    /// The span id of whatever the next span is a child of (0: a root).
    pub parent: u64,
    pub sampled: bool,
}

impl TraceCtx {
    /// The context for the spans of calls made by the span `span_id`.
    pub(super) fn parent_for_calls(self, span_id: u64) -> Self {
        Self {
            parent: span_id,
            ..self
        }
    }

    /// The context a callee continues from the caller's span `span_id`.
    pub(super) fn child_of(self, span_id: u64) -> Self {
        self.parent_for_calls(span_id)
    }
}
