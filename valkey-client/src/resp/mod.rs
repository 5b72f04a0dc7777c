//! RESP2 and RESP3: the [`Value`] type, an incremental parser and a command
//! encoder. No I/O happens here: bytes in, values out.
//!
//! The parser never panics on any input, never allocates what a length prefix
//! merely claims, and enforces [`Limits`] on bulk size, nesting depth and
//! element count.

mod encoder;
mod parser;
mod value;

pub(crate) use encoder::{Header, put_header};
pub use encoder::{encode_command, encode_value};
pub use parser::{Limits, MAX_DEPTH_CAP, ProtocolError, decode};
pub use value::{ServerError, Value};

#[cfg(test)]
mod tests;
