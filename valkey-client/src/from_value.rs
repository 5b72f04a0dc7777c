//! [`FromValue`]: turning a reply into the caller's type.

use std::collections::HashMap;
use std::hash::Hash;

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;

/// A type a reply can be converted into. A reply of another shape is an
/// [`ErrorKind::Data`] error naming both.
///
/// ```
/// use valkey_client::{FromValue, Value};
/// let n = i64::from_value(Value::BulkString("42".into()))?;
/// assert_eq!(n, 42);
/// let missing = Option::<String>::from_value(Value::Nil)?;
/// assert_eq!(missing, None);
/// # Ok::<(), valkey_client::Error>(())
/// ```
pub trait FromValue: Sized {
    /// Converts the reply.
    fn from_value(value: Value) -> Result<Self>;
}

fn mismatch(value: &Value, wanted: &str) -> Error {
    let shape = match value {
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
    };
    Error::new(
        ErrorKind::Data,
        format!("cannot convert a {shape} reply into {wanted}"),
    )
}

/// Attributes annotate a reply; conversions look through them.
fn strip(value: Value) -> Value {
    match value {
        Value::Attribute { value, .. } => strip(*value),
        value => value,
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self> {
        Ok(value)
    }
}

impl FromValue for () {
    fn from_value(_: Value) -> Result<Self> {
        Ok(())
    }
}

impl FromValue for Bytes {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => Ok(b),
            Value::Verbatim { text, .. } => Ok(text),
            Value::Int(i) => Ok(Bytes::from(i.to_string())),
            Value::Double(d) => Ok(Bytes::from(d.to_string())),
            other => Err(mismatch(&other, "bytes")),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self> {
        Bytes::from_value(value).map(Vec::from)
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self> {
        let bytes = Bytes::from_value(value)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::new(ErrorKind::Data, "reply is not valid UTF-8"))
    }
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self> {
                let wanted = stringify!($t);
                match strip(value) {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| Error::new(ErrorKind::Data, format!("{i} does not fit in {wanted}"))),
                    Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => {
                        std::str::from_utf8(&b)
                            .ok()
                            .and_then(|s| s.parse::<$t>().ok())
                            .ok_or_else(|| Error::new(
                                ErrorKind::Data,
                                format!("reply `{}` is not a valid {wanted}", String::from_utf8_lossy(&b)),
                            ))
                    }
                    Value::Boolean(b) => Ok(b as $t),
                    other => Err(mismatch(&other, wanted)),
                }
            }
        }
    )*};
}
// No `u8`/`i8`: `Vec<u8>` means the bytes of one string reply, not a list of
// small integers.
int_from_value!(i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

impl FromValue for f64 {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Double(d) => Ok(d),
            Value::Int(i) => Ok(i as f64),
            Value::SimpleString(b) | Value::BulkString(b) => {
                let text = std::str::from_utf8(&b).unwrap_or("");
                match text {
                    "inf" | "+inf" => Ok(f64::INFINITY),
                    "-inf" => Ok(f64::NEG_INFINITY),
                    _ => text.parse().map_err(|_| {
                        Error::new(ErrorKind::Data, format!("reply `{text}` is not a number"))
                    }),
                }
            }
            other => Err(mismatch(&other, "f64")),
        }
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Boolean(b) => Ok(b),
            Value::Int(i) => Ok(i != 0),
            Value::SimpleString(s) if s.as_ref() == b"OK" => Ok(true),
            Value::Nil => Ok(false),
            other => Err(mismatch(&other, "bool")),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Nil => Ok(None),
            value => T::from_value(value).map(Some),
        }
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Array(items) | Value::Set(items) | Value::Push(items) => {
                items.into_iter().map(T::from_value).collect()
            }
            // A RESP3 map read as a flat list, as RESP2 would have sent it.
            Value::Map(pairs) => {
                let mut out = Vec::with_capacity(pairs.len() * 2);
                for (k, v) in pairs {
                    out.push(T::from_value(k)?);
                    out.push(T::from_value(v)?);
                }
                Ok(out)
            }
            Value::Nil => Ok(Vec::new()),
            other => Err(mismatch(&other, "a list")),
        }
    }
}

impl<K: FromValue + Eq + Hash, V: FromValue> FromValue for HashMap<K, V> {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::Map(pairs) => pairs
                .into_iter()
                .map(|(k, v)| Ok((K::from_value(k)?, V::from_value(v)?)))
                .collect(),
            // RESP2 sends maps as flat arrays of key, value, key, value.
            Value::Array(items) if items.len() % 2 == 0 => {
                let mut out = HashMap::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    out.insert(K::from_value(k)?, V::from_value(v)?);
                }
                Ok(out)
            }
            Value::Nil => Ok(HashMap::new()),
            other => Err(mismatch(&other, "a map")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(i64::from_value(Value::Int(-3)).unwrap(), -3);
        assert_eq!(u16::from_value(Value::BulkString("7".into())).unwrap(), 7);
        assert_eq!(
            u16::from_value(Value::Int(-1)).unwrap_err().kind(),
            ErrorKind::Data
        );
        assert_eq!(
            Vec::<u8>::from_value(Value::BulkString("ab".into())).unwrap(),
            b"ab"
        );
        assert_eq!(
            String::from_value(Value::SimpleString("OK".into())).unwrap(),
            "OK"
        );
        assert_eq!(
            f64::from_value(Value::BulkString("-inf".into())).unwrap(),
            f64::NEG_INFINITY
        );
        assert_eq!(Option::<i64>::from_value(Value::Nil).unwrap(), None);
        assert!(bool::from_value(Value::SimpleString("OK".into())).unwrap());
        let list = Value::Array(vec![Value::BulkString("a".into()), Value::Nil]);
        assert_eq!(
            Vec::<Option<String>>::from_value(list).unwrap(),
            vec![Some("a".to_string()), None]
        );
        let flat = Value::Array(vec![
            Value::BulkString("f".into()),
            Value::BulkString("1".into()),
        ]);
        let map = HashMap::<String, i64>::from_value(flat).unwrap();
        assert_eq!(map.get("f"), Some(&1));
        let err = i64::from_value(Value::Array(vec![])).unwrap_err();
        assert!(err.to_string().contains("array"), "{err}");
    }
}
