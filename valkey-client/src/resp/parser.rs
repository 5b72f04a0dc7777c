//! Placeholder replaced by the real incremental parser (work in progress).
use super::Value;
use bytes::BytesMut;

/// Limits the parser enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest bulk string accepted.
    pub max_bulk_len: usize,
    /// Deepest nesting of aggregates.
    pub max_depth: usize,
    /// Most elements in one aggregate.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 << 20,
            max_depth: 128,
            max_elements: 1 << 26,
        }
    }
}

/// A protocol violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ProtocolError {}

/// Decodes one value.
pub fn decode(_buf: &mut BytesMut, _limits: &Limits) -> Result<Option<Value>, ProtocolError> {
    Err(ProtocolError("placeholder".into()))
}
