//! The critical path of a trace: the chain of work that decided how long
//! the trace took, where shortening anything off the path would not have
//! made it faster. Walking back from the root's end, a span is on the
//! path while none of its children runs; otherwise the child that finished
//! last (before the point reached) is, and so on inside that child — the
//! method of Jaeger's UI. Children are first clamped to their parent's
//! time (clock skew between hosts can push them past it), and a child
//! that runs beside the one already on the path never joins it.

use std::collections::HashMap;

use serde::Serialize;

/// What the walk needs from a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing<'a> {
    pub span_id: &'a str,
    pub parent_span_id: Option<&'a str>,
    pub start: i64,
    pub end: i64,
}

/// A stretch of time the trace spent in one span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathSegment {
    pub span_id: String,
    pub start_unix_nanos: i64,
    pub end_unix_nanos: i64,
}

/// One span in the walk: its position in the input and its clamped time.
#[derive(Debug, Clone, Copy)]
struct Clamped {
    index: usize,
    start: i64,
    end: i64,
}

/// A span being walked: where the walk has reached in it, and how many of
/// its children (latest-ending first) have been looked at.
struct Frame {
    span: Clamped,
    cursor: i64,
    next_child: usize,
}

/// The critical path of the trace made of `spans`, in time order. The walk
/// starts at the root (a span whose parent is not in the trace) that ends
/// last; other roots and their subtrees are off the path.
pub fn critical_path(spans: &[Timing<'_>]) -> Vec<PathSegment> {
    let by_id: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(index, span)| (span.span_id, index))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        match span.parent_span_id.and_then(|parent| by_id.get(parent)) {
            Some(&parent) if parent != index => children[parent].push(index),
            Some(_) => {}
            None => roots.push(index),
        }
    }
    let Some(root) = roots
        .into_iter()
        .max_by_key(|&i| (spans[i].end, std::cmp::Reverse(spans[i].start)))
    else {
        return Vec::new();
    };
    let root = Clamped {
        index: root,
        start: spans[root].start,
        end: spans[root].end.max(spans[root].start),
    };
    let mut path = Vec::new();
    let mut stack = vec![Frame {
        span: root,
        cursor: root.end,
        next_child: 0,
    }];
    // Children of each span on the path, clamped, latest-ending first.
    let mut sorted: HashMap<usize, Vec<Clamped>> = HashMap::new();
    while let Some(frame) = stack.last_mut() {
        let parent = frame.span;
        let kids = sorted.entry(parent.index).or_insert_with(|| {
            let mut kids: Vec<Clamped> = children[parent.index]
                .iter()
                .map(|&index| Clamped {
                    index,
                    start: spans[index].start.max(parent.start),
                    end: spans[index].end.min(parent.end),
                })
                .filter(|child| child.end > child.start)
                .collect();
            kids.sort_by_key(|child| (std::cmp::Reverse(child.end), child.start, child.index));
            kids
        });
        // The cursor only moves back, so a child skipped here (it ends
        // after the cursor: it ran beside the path) never qualifies later.
        while frame.next_child < kids.len() && kids[frame.next_child].end > frame.cursor {
            frame.next_child += 1;
        }
        if let Some(&child) = kids.get(frame.next_child) {
            frame.next_child += 1;
            push(&mut path, spans, parent.index, child.end, frame.cursor);
            frame.cursor = child.start;
            stack.push(Frame {
                span: child,
                cursor: child.end,
                next_child: 0,
            });
        } else {
            push(&mut path, spans, parent.index, parent.start, frame.cursor);
            stack.pop();
        }
    }
    path.reverse();
    path
}

/// Adds `span`'s stretch from `start` to `end`, if it has any length.
fn push(path: &mut Vec<PathSegment>, spans: &[Timing<'_>], span: usize, start: i64, end: i64) {
    if end > start {
        path.push(PathSegment {
            span_id: spans[span].span_id.to_owned(),
            start_unix_nanos: start,
            end_unix_nanos: end,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span<'a>(id: &'a str, parent: Option<&'a str>, start: i64, end: i64) -> Timing<'a> {
        Timing {
            span_id: id,
            parent_span_id: parent,
            start,
            end,
        }
    }

    fn stretches(path: &[PathSegment]) -> Vec<(&str, i64, i64)> {
        path.iter()
            .map(|s| (s.span_id.as_str(), s.start_unix_nanos, s.end_unix_nanos))
            .collect()
    }

    #[test]
    fn the_last_finishing_child_is_on_the_path_and_its_sibling_is_not() {
        let spans = [
            span("root", None, 0, 100),
            span("fast", Some("root"), 5, 30),
            span("slow", Some("root"), 10, 90),
            span("db", Some("slow"), 20, 80),
        ];
        assert_eq!(
            stretches(&critical_path(&spans)),
            [
                ("root", 0, 10),
                ("slow", 10, 20),
                ("db", 20, 80),
                ("slow", 80, 90),
                ("root", 90, 100),
            ]
        );
    }

    #[test]
    fn sequential_children_are_all_on_the_path() {
        let spans = [
            span("root", None, 0, 100),
            span("b", Some("root"), 50, 90),
            span("a", Some("root"), 10, 40),
        ];
        assert_eq!(
            stretches(&critical_path(&spans)),
            [
                ("root", 0, 10),
                ("a", 10, 40),
                ("root", 40, 50),
                ("b", 50, 90),
                ("root", 90, 100),
            ]
        );
    }

    #[test]
    fn a_child_past_its_parent_by_clock_skew_is_clamped() {
        let spans = [
            span("root", None, 0, 100),
            span("skewed", Some("root"), 60, 130),
        ];
        assert_eq!(
            stretches(&critical_path(&spans)),
            [("root", 0, 60), ("skewed", 60, 100)]
        );
    }

    #[test]
    fn the_path_covers_the_root_exactly_once() {
        // Overlapping, nested, zero-length and out-of-parent children.
        let spans = [
            span("root", None, 0, 1000),
            span("a", Some("root"), 0, 400),
            span("b", Some("root"), 100, 700),
            span("c", Some("b"), 100, 650),
            span("d", Some("b"), 300, 300),
            span("e", Some("root"), 690, 990),
            span("f", Some("e"), 2000, 3000),
            span("g", Some("c"), 50, 120),
        ];
        let path = critical_path(&spans);
        let mut at = 0;
        for segment in &path {
            assert_eq!(segment.start_unix_nanos, at, "{path:?}");
            assert!(segment.end_unix_nanos > segment.start_unix_nanos);
            at = segment.end_unix_nanos;
        }
        assert_eq!(at, 1000);
        assert!(path.iter().all(|s| s.span_id != "f" && s.span_id != "d"));
    }

    #[test]
    fn the_root_that_ends_last_is_walked_and_cycles_are_ignored() {
        let spans = [
            span("early", None, 0, 10),
            span("late", Some("missing"), 5, 50),
            span("x", Some("y"), 6, 7),
            span("y", Some("x"), 6, 7),
            span("self", Some("self"), 8, 9),
        ];
        assert_eq!(stretches(&critical_path(&spans)), [("late", 5, 50)]);
        assert!(critical_path(&[]).is_empty());
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        let ids: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let spans: Vec<Timing<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let parent = i.checked_sub(1).map(|p| ids[p].as_str());
                span(id, parent, i as i64, 300_000 - i as i64)
            })
            .collect();
        let path = critical_path(&spans);
        assert_eq!(path.len(), 2 * 100_000 - 1);
    }
}
