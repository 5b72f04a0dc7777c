//! Placeholder replaced by the real encoder (work in progress).
use super::Value;
use bytes::BytesMut;

/// Encodes a command.
pub fn encode_command<'a>(_out: &mut BytesMut, _args: impl ExactSizeIterator<Item = &'a [u8]>) {}

/// Encodes a value.
pub fn encode_value(_out: &mut BytesMut, _value: &Value) {}
