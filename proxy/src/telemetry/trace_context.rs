//! W3C Trace Context: `traceparent` in, a child `traceparent` out.

use http::HeaderValue;
use rand::RngExt;

/// The trace a request belongs to and the span that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The caller's span, absent when this proxy starts the trace.
    pub parent_span_id: Option<[u8; 8]>,
    pub flags: u8,
    pub tracestate: Option<HeaderValue>,
}

fn hex_into(text: &[u8], out: &mut [u8]) -> Option<()> {
    if text.len() != out.len() * 2 {
        return None;
    }
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

impl TraceContext {
    /// Reads `traceparent` (version 00 and, as the spec asks, later
    /// versions' first four fields); a missing or invalid header starts a
    /// new sampled trace.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        headers
            .get("traceparent")
            .and_then(|value| Self::parse(value.as_bytes()))
            .map(|mut context| {
                context.tracestate = headers.get("tracestate").cloned();
                context
            })
            .unwrap_or_else(Self::start)
    }

    fn parse(value: &[u8]) -> Option<Self> {
        if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let mut version = [0u8; 1];
        hex_into(&value[0..2], &mut version)?;
        if version[0] == 0xff || (version[0] == 0 && value.len() != 55) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut parent = [0u8; 8];
        let mut flags = [0u8; 1];
        hex_into(&value[3..35], &mut trace_id)?;
        hex_into(&value[36..52], &mut parent)?;
        hex_into(&value[53..55], &mut flags)?;
        if trace_id == [0; 16] || parent == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            parent_span_id: Some(parent),
            flags: flags[0],
            tracestate: None,
        })
    }

    /// A new, sampled trace.
    pub fn start() -> Self {
        let mut trace_id = [0u8; 16];
        rand::rng().fill(&mut trace_id);
        trace_id[0] |= 1; // never all zero
        Self {
            trace_id,
            parent_span_id: None,
            flags: 1,
            tracestate: None,
        }
    }

    /// Writes `traceparent` naming `span_id` as the parent of what follows,
    /// and passes `tracestate` through.
    pub fn propagate(&self, span_id: [u8; 8], headers: &mut http::HeaderMap) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = Vec::with_capacity(55);
        out.extend_from_slice(b"00-");
        for byte in self.trace_id {
            out.extend([HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]);
        }
        out.push(b'-');
        for byte in span_id {
            out.extend([HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]);
        }
        out.push(b'-');
        out.extend([
            HEX[(self.flags >> 4) as usize],
            HEX[(self.flags & 15) as usize],
        ]);
        let value = HeaderValue::from_bytes(&out).expect("hex is a valid header value");
        headers.insert("traceparent", value);
        match &self.tracestate {
            Some(state) => headers.insert("tracestate", state.clone()),
            None => headers.remove("tracestate"),
        };
    }
}

/// A new random span ID.
pub fn new_span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    rand::rng().fill(&mut id);
    id[7] |= 1;
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_valid_parent_is_continued_and_propagated() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", PARENT.parse().unwrap());
        headers.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        let context = TraceContext::from_headers(&headers);
        assert_eq!(
            context.parent_span_id,
            Some([0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31])
        );
        let mut out = http::HeaderMap::new();
        context.propagate([1, 2, 3, 4, 5, 6, 7, 8], &mut out);
        assert_eq!(
            out["traceparent"],
            "00-0af7651916cd43dd8448eb211c80319c-0102030405060708-01"
        );
        assert_eq!(out["tracestate"], "congo=t61rcWkgMzE");
    }

    #[test]
    fn an_invalid_or_missing_parent_starts_a_trace() {
        for bad in [
            "",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", bad.parse().unwrap());
            let context = TraceContext::from_headers(&headers);
            assert_eq!(context.parent_span_id, None, "{bad} was accepted");
            assert_ne!(context.trace_id, [0; 16]);
        }
    }

    #[test]
    fn later_versions_are_read_by_their_first_fields() {
        let mut headers = http::HeaderMap::new();
        let future = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-comes-next";
        headers.insert("traceparent", future.parse().unwrap());
        assert!(
            TraceContext::from_headers(&headers)
                .parent_span_id
                .is_some()
        );
    }
}
