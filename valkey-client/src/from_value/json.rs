//! JSON, with the `serde_json` feature: `FromValue` for
//! [`serde_json::Value`] and the [`Json`] wrapper.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{FromValue, data, mismatch, shape, strip};
use crate::cmd::{ArgWriter, ToArg, ToArgs};
use crate::error::Result;
use crate::resp::Value;

/// A reply as JSON: a string reply (simple, bulk or verbatim) is parsed as
/// a JSON text, as `GET` of a stored document or `JSON.GET` give it; any
/// other reply is mapped by its structure: nil is `null`, a boolean, an
/// integer or a double a JSON boolean or number (a non-finite double is a
/// Data error), a big number a number when it fits in 64 bits and its
/// digits as a string otherwise, an array or set an array, a map an object
/// (string, number and boolean keys become their text). Inside such a
/// structure a string is a JSON string, not parsed.
impl FromValue for serde_json::Value {
    fn from_value(value: Value) -> Result<Self> {
        match strip(value) {
            Value::SimpleString(text) | Value::BulkString(text) | Value::Verbatim { text, .. } => {
                serde_json::from_slice(&text)
                    .map_err(|err| data(format!("reply is not valid JSON: {err}")))
            }
            other => structural(other),
        }
    }
}

/// A reply mapped to JSON by its structure.
fn structural(value: Value) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match strip(value) {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::Int(i) => J::from(i),
        Value::Double(d) => serde_json::Number::from_f64(d)
            .map(J::Number)
            .ok_or_else(|| data(format!("the double {d} has no JSON number")))?,
        Value::BigNumber(digits) => {
            let text = utf8(&digits)?;
            match (text.parse::<i64>(), text.parse::<u64>()) {
                (Ok(i), _) => J::from(i),
                (_, Ok(u)) => J::from(u),
                _ => J::String(text.to_string()),
            }
        }
        Value::SimpleString(text) | Value::BulkString(text) | Value::Verbatim { text, .. } => {
            J::String(utf8(&text)?.to_string())
        }
        Value::Array(items) | Value::Set(items) | Value::Push(items) => J::Array(
            items
                .into_iter()
                .map(structural)
                .collect::<Result<Vec<_>>>()?,
        ),
        Value::Map(pairs) => {
            let mut object = serde_json::Map::new();
            for (key, value) in pairs {
                object.insert(object_key(key)?, structural(value)?);
            }
            J::Object(object)
        }
        other => return Err(mismatch(other, "JSON")),
    })
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| data("reply is not valid UTF-8"))
}

/// A map key as a JSON object key.
fn object_key(key: Value) -> Result<String> {
    match strip(key) {
        Value::SimpleString(text)
        | Value::BulkString(text)
        | Value::BigNumber(text)
        | Value::Verbatim { text, .. } => Ok(utf8(&text)?.to_string()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Double(d) => Ok(d.to_string()),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(data(format!(
            "a map key that is a {} reply cannot be a JSON object key",
            shape(&other)
        ))),
    }
}

/// A value stored as JSON text: as an argument it is serialized with
/// `serde_json` (one argument), and a reply is deserialized into it (a
/// string reply parsed as JSON text; another reply mapped by its structure
/// first, as for [`serde_json::Value`]).
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use std::collections::BTreeMap;
/// use valkey_client::{Commands, Json};
/// let profile = BTreeMap::from([("name", "Ada"), ("lang", "en")]);
/// client.set("profile:1", Json(&profile)).await?;
/// let Json(back): Json<BTreeMap<String, String>> = client.get("profile:1").await?;
/// assert_eq!(back["name"], "Ada");
/// # Ok(()) }
/// ```
///
/// Serializing cannot report an error through an argument: a value
/// `serde_json` refuses (a map whose keys are not strings, a `Serialize`
/// implementation that fails) is logged at error level and sent as an empty
/// argument. Check such values first with [`Json::to_vec`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: Serialize> Json<T> {
    /// The JSON text the argument is, or the serialization error (a Data
    /// error).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&self.0)
            .map_err(|err| data(format!("cannot serialize the value as JSON: {err}")))
    }
}

impl<T: Serialize> ToArg for Json<T> {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self.to_vec() {
            Ok(bytes) => f(&bytes),
            Err(err) => {
                tracing::error!(%err, "a Json argument failed to serialize: sent empty");
                f(b"")
            }
        }
    }
}

impl<T: Serialize> ToArgs for Json<T> {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        self.with_bytes(|bytes| out.write_arg(bytes));
    }

    fn num_args(&self) -> usize {
        1
    }
}

impl<T: DeserializeOwned> FromValue for Json<T> {
    fn from_value(value: Value) -> Result<Self> {
        let parsed = match strip(value) {
            Value::SimpleString(text) | Value::BulkString(text) | Value::Verbatim { text, .. } => {
                serde_json::from_slice(&text)
            }
            other => serde_json::from_value(structural(other)?),
        };
        parsed
            .map(Json)
            .map_err(|err| data(format!("cannot deserialize the reply from JSON: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde_json::json;

    use super::*;
    use crate::ErrorKind;
    use crate::cmd::Cmd;
    use crate::resp::ServerError;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.to_string().into())
    }

    #[test]
    fn json_text_is_parsed() {
        let v = serde_json::Value::from_value(bulk(r#"{"a":[1,2.5,null]}"#)).unwrap();
        assert_eq!(v, json!({"a": [1, 2.5, null]}));
        let err = serde_json::Value::from_value(bulk("not json")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data);
    }

    #[test]
    fn structures_are_mapped() {
        let reply = Value::Map(vec![
            (bulk("name"), bulk("Ada")),
            (Value::Int(7), Value::Double(1.5)),
            (
                bulk("list"),
                Value::Array(vec![Value::Boolean(true), Value::Nil, bulk("{}")]),
            ),
            (
                bulk("big"),
                Value::BigNumber("123456789012345678901234".into()),
            ),
            (bulk("small"), Value::BigNumber("-5".into())),
        ]);
        let v = serde_json::Value::from_value(Value::Attribute {
            attributes: vec![],
            value: Box::new(reply),
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"name": "Ada", "7": 1.5, "list": [true, null, "{}"],
                   "big": "123456789012345678901234", "small": -5})
        );
        assert_eq!(
            serde_json::Value::from_value(Value::Int(3)).unwrap(),
            json!(3)
        );
        assert_eq!(
            serde_json::Value::from_value(Value::Nil).unwrap(),
            json!(null)
        );
    }

    #[test]
    fn unmappable_replies_are_errors() {
        let nan = serde_json::Value::from_value(Value::Array(vec![Value::Double(f64::NAN)]));
        assert_eq!(nan.unwrap_err().kind(), ErrorKind::Data);
        let key = Value::Map(vec![(Value::Array(vec![]), Value::Int(1))]);
        assert_eq!(
            serde_json::Value::from_value(key).unwrap_err().kind(),
            ErrorKind::Data
        );
        let err = Value::Array(vec![Value::Error(ServerError::from_line(b"ERR boom"))]);
        assert_eq!(
            serde_json::Value::from_value(err).unwrap_err().code(),
            Some("ERR")
        );
        let bad = Value::Array(vec![Value::BulkString((&b"\xff"[..]).into())]);
        assert_eq!(
            serde_json::Value::from_value(bad).unwrap_err().kind(),
            ErrorKind::Data
        );
    }

    #[test]
    fn json_wrapper_round_trips() {
        let value = BTreeMap::from([("a".to_string(), vec![1, 2]), ("b".to_string(), vec![])]);
        let cmd = Cmd::new("SET").arg("k").arg(Json(&value));
        let text = cmd.arg_at(2).unwrap().to_vec();
        assert_eq!(text, br#"{"a":[1,2],"b":[]}"#);
        assert_eq!(Json(&value).num_args(), 1);
        let Json(back) =
            Json::<BTreeMap<String, Vec<i32>>>::from_value(Value::BulkString(text.into())).unwrap();
        assert_eq!(back, value);
        // A RESP3 map reads through its structure.
        let map = Value::Map(vec![(bulk("x"), Value::Int(1))]);
        let Json(m) = Json::<HashMap<String, i64>>::from_value(map).unwrap();
        assert_eq!(m["x"], 1);
        // Nil is null: an Option inside reads it.
        let Json(none) = Json::<Option<i64>>::from_value(Value::Nil).unwrap();
        assert_eq!(none, None);
        let err = Json::<Vec<i64>>::from_value(bulk(r#"{"a":1}"#)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data);
    }

    #[test]
    fn unserializable_argument_is_empty_and_reported_by_to_vec() {
        // serde_json refuses maps whose keys are not strings or numbers.
        let bad = HashMap::from([((1, 2), "v")]);
        assert_eq!(Json(&bad).to_vec().unwrap_err().kind(), ErrorKind::Data);
        let cmd = Cmd::new("SET").arg("k").arg(Json(&bad));
        assert_eq!(cmd.arg_at(2), Some(&b""[..]));
    }
}
