//! [`FromValue`]: turning a reply into the caller's type.
//!
//! Scalars are here; lists, sets and maps in `collections`, tuples in
//! `tuples`, the RESP3-specific types in `resp3`, JSON in `json`.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;

mod collections;
#[cfg(feature = "serde_json")]
mod json;
mod resp3;
mod tuples;

#[cfg(feature = "serde_json")]
pub use json::Json;
pub use resp3::{BigNumber, Verbatim};

/// A type a reply can be converted into.
///
/// The rules every conversion follows:
///
/// - A reply of another shape is an [`ErrorKind::Data`] error naming both
///   shapes; a conversion never panics.
/// - An error reply met anywhere (an element of an `EXEC` reply, say) is
///   that server error, with its own kind and code, unless the type asks
///   for it with a [`Result`] element: `Vec<Result<i64>>` keeps each
///   element's error (or conversion error) in place.
/// - RESP3 attributes are looked through; only [`Value`] itself keeps them.
/// - RESP2 and RESP3 give the same result: a map reads a RESP3 map or a
///   RESP2 flat array `key, value, key, value, ...`; `Option<T>` is `None`
///   for a null reply; a list reads a null reply as empty.
///
/// Lists, pairs and maps:
///
/// - A list (`Vec`, `VecDeque`, `[T; N]`, `HashSet`, `BTreeSet`) reads an
///   array, set or push reply, one element each. A RESP3 map read into a
///   list is flattened to `key, value, key, value, ...` as RESP2 would have
///   sent it, except for a list of pairs.
/// - A list of pairs (`Vec<(K, V)>`) reads one entry of a RESP3 map per
///   element. From an array it reads one pair per element when every
///   element is itself an array (RESP3's `ZRANGE ... WITHSCORES`), and the
///   flat `key, value, ...` form otherwise (RESP2), which needs an even
///   length.
/// - A map (`HashMap` with any hasher, `BTreeMap`) reads a RESP3 map or an
///   array by the same rule as a list of pairs; a repeated key keeps its
///   last value.
/// - A tuple of `n` reads an array of exactly `n` elements, or a RESP3 map
///   whose flattened entries are `n` (so `(String, String)` reads `CONFIG
///   GET name` in both protocols).
/// - `[T; N]` needs exactly `N` elements.
///
/// RESP3 types: [`Verbatim`] keeps a verbatim string's format (a `String`
/// takes just its text); [`BigNumber`] keeps a big number's digits (`i128`,
/// `u128` and `f64` read it when it fits); `f64` and `f32` read doubles,
/// integers, big numbers and numeric strings (`inf`, `-inf`, `nan`).
///
/// ```
/// use valkey_client::{FromValue, Value};
/// let n = i64::from_value(Value::BulkString("42".into()))?;
/// assert_eq!(n, 42);
/// let missing = Option::<String>::from_value(Value::Nil)?;
/// assert_eq!(missing, None);
/// let pair: (String, f64) = FromValue::from_value(Value::Array(vec![
///     Value::BulkString("member".into()),
///     Value::Double(1.5),
/// ]))?;
/// assert_eq!(pair, ("member".to_string(), 1.5));
/// # Ok::<(), valkey_client::Error>(())
/// ```
pub trait FromValue: Sized {
    /// Converts the reply.
    fn from_value(value: Value) -> Result<Self>;

    /// Converts one element that may have failed on its own, such as one
    /// command's result in a pipeline. By default its error is the error of
    /// the conversion; `Result<T>` keeps it as the element instead.
    fn from_result(result: Result<Value>) -> Result<Self> {
        Self::from_value(result?)
    }

    /// Converts a pipeline's results as one array (see
    /// [`Valkey::pipeline_into`](crate::Valkey::pipeline_into)). By default
    /// the first failed command's error is returned; lists and tuples
    /// convert element by element with [`FromValue::from_result`], so
    /// `Result` elements keep their own errors.
    fn from_results(results: Vec<Result<Value>>) -> Result<Self> {
        let values = results.into_iter().collect::<Result<Vec<Value>>>()?;
        Self::from_value(Value::Array(values))
    }

    /// Whether a list of `Self` reads a map (or a RESP2 flat array) as one
    /// element per key, value pair: true for 2-tuples.
    #[doc(hidden)]
    const READS_PAIRS: bool = false;

    /// One element from a key and its value (used when `READS_PAIRS`).
    #[doc(hidden)]
    fn from_pair(key: Value, value: Value) -> Result<Self> {
        Self::from_value(Value::Array(vec![key, value]))
    }
}

/// The shape of a reply, for error messages.
pub(crate) fn shape(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::SimpleString(_) => "simple string",
        Value::Error(_) => "error",
        Value::Int(_) => "integer",
        Value::BulkString(_) => "bulk string",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Set(_) => "set",
        Value::Double(_) => "double",
        Value::Boolean(_) => "boolean",
        Value::BigNumber(_) => "big number",
        Value::Verbatim { .. } => "verbatim string",
        Value::Push(_) => "push",
        Value::Attribute { .. } => "attribute",
    }
}

/// The error for a reply that does not convert into `wanted`: an error
/// reply stays the server's error; any other shape is a Data error naming
/// both.
pub(crate) fn mismatch(value: Value, wanted: &str) -> Error {
    match strip(value) {
        Value::Error(err) => Error::from_server(err),
        value => Error::new(
            ErrorKind::Data,
            format!("cannot convert a {} reply into {wanted}", shape(&value)),
        ),
    }
}

/// A Data error with a message.
pub(crate) fn data(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Data, message)
}

/// Attributes annotate a reply; conversions look through them.
pub(crate) fn strip(value: Value) -> Value {
    match value {
        Value::Attribute { value, .. } => strip(*value),
        value => value,
    }
}

/// The raw reply, attributes included.
impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self> {
        Ok(value)
    }
}

/// Any reply but an error reply.
impl FromValue for () {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Error(err) => Err(Error::from_server(err)),
            _ => Ok(()),
        }
    }
}

/// Keeps the element's own failure: an error reply becomes `Ok(Err(..))`
/// with the server's error, and so does a conversion error of the element,
/// so one failed element does not fail the whole list. A failure of the
/// surrounding conversion (a list that is not a list) is still an error.
///
/// ```
/// use valkey_client::{ErrorKind, FromValue, Value};
/// use valkey_client::resp::ServerError;
/// // An EXEC reply whose second command failed.
/// let exec = Value::Array(vec![
///     Value::Int(1),
///     Value::Error(ServerError::from_line(b"WRONGTYPE Operation against a key")),
/// ]);
/// let results = Vec::<valkey_client::Result<i64>>::from_value(exec)?;
/// assert_eq!(results[0].as_ref().ok(), Some(&1));
/// assert_eq!(results[1].as_ref().unwrap_err().code(), Some("WRONGTYPE"));
/// # Ok::<(), valkey_client::Error>(())
/// ```
impl<T: FromValue> FromValue for Result<T> {
    fn from_value(value: Value) -> Result<Self> {
        Ok(element(value))
    }

    fn from_result(result: Result<Value>) -> Result<Self> {
        Ok(result.and_then(element))
    }

    fn from_results(results: Vec<Result<Value>>) -> Result<Self> {
        Ok(T::from_results(results))
    }

    const READS_PAIRS: bool = T::READS_PAIRS;

    fn from_pair(key: Value, value: Value) -> Result<Self> {
        Ok(T::from_pair(key, value))
    }
}

/// One element that may be an error reply.
fn element<T: FromValue>(value: Value) -> Result<T> {
    match strip(value) {
        Value::Error(err) => Err(Error::from_server(err)),
        value => T::from_value(value),
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Nil => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }

    const READS_PAIRS: bool = T::READS_PAIRS;

    fn from_pair(key: Value, value: Value) -> Result<Self> {
        T::from_pair(key, value).map(Some)
    }
}

/// The bytes of any string reply (simple, bulk, verbatim, big number), or
/// the text of a number.
impl FromValue for Bytes {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => Ok(b),
            Value::Verbatim { text, .. } => Ok(text),
            Value::Int(i) => Ok(Bytes::from(i.to_string())),
            Value::Double(d) => Ok(Bytes::from(d.to_string())),
            other => Err(mismatch(other, "bytes")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self> {
        Bytes::from_value(value).map(Vec::from)
    }
}

impl FromValue for Box<[u8]> {
    fn from_value(value: Value) -> Result<Self> {
        Vec::<u8>::from_value(value).map(Vec::into_boxed_slice)
    }
}

impl FromValue for Arc<[u8]> {
    fn from_value(value: Value) -> Result<Self> {
        Bytes::from_value(value).map(|b| Arc::from(&b[..]))
    }
}

/// The bytes of a string reply of exactly `N` bytes.
impl<const N: usize> FromValue for [u8; N] {
    fn from_value(value: Value) -> Result<Self> {
        let bytes = Bytes::from_value(value)?;
        <[u8; N]>::try_from(&bytes[..])
            .map_err(|_| data(format!("a reply of {} bytes is not {N} bytes", bytes.len())))
    }
}

/// The text of a string reply; it must be valid UTF-8.
impl FromValue for String {
    fn from_value(value: Value) -> Result<Self> {
        let bytes = Bytes::from_value(value)?;
        String::from_utf8(Vec::from(bytes)).map_err(|_| data("reply is not valid UTF-8"))
    }
}

impl FromValue for Box<str> {
    fn from_value(value: Value) -> Result<Self> {
        String::from_value(value).map(String::into_boxed_str)
    }
}

impl FromValue for Arc<str> {
    fn from_value(value: Value) -> Result<Self> {
        String::from_value(value).map(Arc::from)
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        /// An integer reply, or a string reply of its digits.
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self> {
                let wanted = stringify!($t);
                match strip(value) {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| data(format!("{i} does not fit in {wanted}"))),
                    Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => {
                        std::str::from_utf8(&b)
                            .ok()
                            .and_then(|s| s.parse::<$t>().ok())
                            .ok_or_else(|| data(format!(
                                "reply `{}` is not a valid {wanted}",
                                String::from_utf8_lossy(&b),
                            )))
                    }
                    Value::Boolean(b) => Ok(<$t>::from(b)),
                    other => Err(mismatch(other, wanted)),
                }
            }
        }
    )*};
}
// No `u8`/`i8`: `Vec<u8>` means the bytes of one string reply, not a list of
// small integers.
int_from_value!(i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

/// A RESP3 double, an integer, a big number, or a string reply of a number
/// (`inf`, `-inf` and `nan` included, as Valkey spells them).
impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Double(d) => Ok(d),
            Value::Int(i) => Ok(i as f64),
            Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => {
                let text = std::str::from_utf8(&b).unwrap_or("");
                match text {
                    "inf" | "+inf" => Ok(f64::INFINITY),
                    "-inf" => Ok(f64::NEG_INFINITY),
                    _ => text
                        .parse()
                        .map_err(|_| data(format!("reply `{text}` is not a number"))),
                }
            }
            other => Err(mismatch(other, "f64")),
        }
    }
}

/// As `f64`, rounded to the nearest `f32`; a finite value too large for
/// `f32` is a Data error rather than an infinity.
impl FromValue for f32 {
    fn from_value(value: Value) -> Result<Self> {
        let wide = f64::from_value(value)?;
        let narrow = wide as f32;
        if narrow.is_infinite() && wide.is_finite() {
            return Err(data(format!("{wide} does not fit in f32")));
        }
        Ok(narrow)
    }
}

/// A RESP3 boolean, an integer (non-zero is true), `OK`, a `1`/`0` string
/// reply, or nil (false).
impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Boolean(b) => Ok(b),
            Value::Int(i) => Ok(i != 0),
            Value::Nil => Ok(false),
            Value::SimpleString(s) | Value::BulkString(s) => match &s[..] {
                b"1" | b"OK" => Ok(true),
                b"0" => Ok(false),
                other => Err(data(format!(
                    "reply `{}` is not a boolean (1 or 0)",
                    String::from_utf8_lossy(other)
                ))),
            },
            other => Err(mismatch(other, "bool")),
        }
    }
}

#[cfg(test)]
mod tests;
