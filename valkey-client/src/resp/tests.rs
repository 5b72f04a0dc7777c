//! Tests of the parser and encoder: hand-written cases in `unit`, property
//! tests in `props`.

mod props;
mod unit;

use super::{Limits, ProtocolError, Value, decode};
use bytes::BytesMut;

/// Decodes `input` with default limits, returning the result and how many
/// bytes were consumed.
fn decode_all(input: &[u8]) -> (Result<Option<Value>, ProtocolError>, usize) {
    decode_with(input, &Limits::default())
}

fn decode_with(input: &[u8], limits: &Limits) -> (Result<Option<Value>, ProtocolError>, usize) {
    let mut buf = BytesMut::from(input);
    let result = decode(&mut buf, limits);
    (result, input.len() - buf.len())
}

/// Decodes a complete value that must use up all of `input`.
fn one(input: &[u8]) -> Value {
    let (result, used) = decode_all(input);
    let value = result.expect("valid input").expect("complete input");
    assert_eq!(
        used,
        input.len(),
        "consumed all of {:?}",
        input.escape_ascii().to_string()
    );
    value
}

/// The error message for invalid `input`, which must consume nothing.
fn fails(input: &[u8]) -> String {
    let (result, used) = decode_all(input);
    assert_eq!(used, 0, "an error consumes nothing");
    match result {
        Err(e) => e.message().to_string(),
        Ok(v) => panic!("{:?} decoded as {v:?}", input.escape_ascii().to_string()),
    }
}

/// Asserts `input` is an incomplete value: `Ok(None)`, nothing consumed.
fn incomplete(input: &[u8]) {
    let (result, used) = decode_all(input);
    assert_eq!(result, Ok(None), "{:?}", input.escape_ascii().to_string());
    assert_eq!(used, 0);
}
