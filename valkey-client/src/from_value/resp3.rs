//! Types for RESP3 replies that plain Rust types would lose something of:
//! a verbatim string's format, a big number's digits.

use super::{FromValue, data, mismatch, strip};
use crate::cmd::{ArgWriter, ToArg, ToArgs};
use crate::error::Result;
use crate::resp::Value;

/// A RESP3 verbatim string (`INFO`, `CLIENT INFO`, `LATENCY DOCTOR` send
/// them): the text and its format, `txt` (plain) or `mkd` (markdown).
///
/// A plain string reply (RESP2 sends the same text as a bulk string) reads
/// as format `txt`. To get only the text, read the reply as a `String`.
///
/// ```
/// use valkey_client::{FromValue, Value, Verbatim};
/// let v = Verbatim::from_value(Value::Verbatim { format: *b"txt", text: "hello".into() })?;
/// assert_eq!((v.format.as_str(), v.text.as_str()), ("txt", "hello"));
/// # Ok::<(), valkey_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verbatim {
    /// The three-letter format, e.g. `txt` or `mkd`.
    pub format: String,
    /// The text.
    pub text: String,
}

impl FromValue for Verbatim {
    fn from_value(value: Value) -> Result<Self> {
        let (format, text) = match strip(value) {
            Value::Verbatim { format, text } => {
                (String::from_utf8_lossy(&format).into_owned(), text)
            }
            Value::SimpleString(text) | Value::BulkString(text) => ("txt".to_string(), text),
            other => return Err(mismatch(other, "a verbatim string")),
        };
        let text = String::from_utf8(Vec::from(text))
            .map_err(|_| data("verbatim string is not valid UTF-8"))?;
        Ok(Verbatim { format, text })
    }
}

/// A RESP3 big number (`(` reply), kept as its decimal digits with an
/// optional leading `-`, since it may not fit any Rust integer. An integer
/// reply or a string reply of digits reads too (RESP2 has no big numbers).
///
/// `i128`, `u128` and `f64` also read a big number directly, when it fits.
///
/// ```
/// use valkey_client::{BigNumber, FromValue, Value};
/// let big = BigNumber::from_value(Value::BigNumber("-1234567890123456789012345".into()))?;
/// assert_eq!(big.as_str(), "-1234567890123456789012345");
/// assert_eq!(big.to_i128(), Some(-1234567890123456789012345));
/// assert!(BigNumber::from_value(Value::BulkString("12a".into())).is_err());
/// # Ok::<(), valkey_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BigNumber(String);

impl BigNumber {
    /// A big number from its text: an optional `-` or `+` and at least one
    /// ASCII digit; `None` for anything else.
    pub fn parse(text: &str) -> Option<BigNumber> {
        let digits = text
            .strip_prefix('-')
            .or_else(|| text.strip_prefix('+'))
            .unwrap_or(text);
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| BigNumber(text.to_string()))
    }

    /// The digits, with their sign if any.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as an `i128`, when it fits.
    pub fn to_i128(&self) -> Option<i128> {
        self.0.parse().ok()
    }

    /// The nearest `f64` (an infinity past `f64`'s range).
    pub fn to_f64(&self) -> f64 {
        // The text is digits with a sign, which `f64` parsing accepts.
        self.0.parse().unwrap_or(f64::NAN)
    }
}

impl std::fmt::Display for BigNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromValue for BigNumber {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Int(i) => Ok(BigNumber(i.to_string())),
            Value::BigNumber(b) | Value::SimpleString(b) | Value::BulkString(b) => {
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(BigNumber::parse)
                    .ok_or_else(|| {
                        data(format!(
                            "reply `{}` is not a big number",
                            String::from_utf8_lossy(&b)
                        ))
                    })
            }
            other => Err(mismatch(other, "a big number")),
        }
    }
}

/// Written as its digits, one argument.
impl ToArg for BigNumber {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self.0.as_bytes())
    }
}

impl ToArgs for BigNumber {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        out.write_arg(self.0.as_bytes());
    }

    fn num_args(&self) -> usize {
        1
    }
}
