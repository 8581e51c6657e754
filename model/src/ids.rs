//! W3C trace and span identifiers, as OTLP carries them (16 and 8 raw bytes).

use std::fmt;

/// A malformed identifier: the request that carried it is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} has {found} bytes, expected {expected}")]
pub struct IdLengthError {
    pub field: &'static str,
    pub expected: usize,
    pub found: usize,
}

/// A 16-byte W3C trace id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte W3C span id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub [u8; 8]);

/// Where a span sits: its trace and its own id. Pairing looks spans up by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct SpanKey {
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

impl TraceId {
    /// Reads the raw OTLP bytes of a `trace_id` field.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdLengthError> {
        <[u8; 16]>::try_from(bytes)
            .map(Self)
            .map_err(|_| IdLengthError {
                field: "trace_id",
                expected: 16,
                found: bytes.len(),
            })
    }

    /// The W3C spec forbids the all-zero id.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }
}

impl SpanId {
    /// Reads the raw OTLP bytes of a `span_id` field; `field` names it in errors.
    pub fn from_slice(bytes: &[u8], field: &'static str) -> Result<Self, IdLengthError> {
        <[u8; 8]>::try_from(bytes)
            .map(Self)
            .map_err(|_| IdLengthError {
                field,
                expected: 8,
                found: bytes.len(),
            })
    }

    /// Reads an optional parent id: OTLP sends no bytes for a root span.
    pub fn parent_from_slice(bytes: &[u8]) -> Result<Option<Self>, IdLengthError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let id = Self::from_slice(bytes, "parent_span_id")?;
        Ok(id.is_valid().then_some(id))
    }

    /// The W3C spec forbids the all-zero id.
    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_lengths_name_the_field() {
        let err = TraceId::from_slice(&[1; 5]).unwrap_err();
        assert_eq!(err.to_string(), "trace_id has 5 bytes, expected 16");
        let err = SpanId::from_slice(&[1; 9], "span_id").unwrap_err();
        assert_eq!(err.to_string(), "span_id has 9 bytes, expected 8");
    }

    #[test]
    fn empty_or_zero_parent_means_root() {
        assert_eq!(SpanId::parent_from_slice(&[]), Ok(None));
        assert_eq!(SpanId::parent_from_slice(&[0; 8]), Ok(None));
        assert!(SpanId::parent_from_slice(&[0; 3]).is_err());
    }

    #[test]
    fn ids_print_as_lowercase_hex() {
        let mut raw = [0u8; 16];
        raw[15] = 0xab;
        assert_eq!(TraceId(raw).to_string(), "000000000000000000000000000000ab");
    }
}
