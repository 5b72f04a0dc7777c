//! The [`Value`] type: one RESP2 or RESP3 reply.

use bytes::Bytes;

/// One reply from the server, covering every RESP2 and RESP3 type.
///
/// Strings are kept as [`Bytes`] slices of the read buffer, so a reply costs no
/// copy of its payload. RESP2's null bulk string (`$-1`) and null array (`*-1`)
/// and RESP3's null (`_`) all become [`Value::Nil`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A null reply.
    Nil,
    /// A simple string (`+OK`).
    SimpleString(Bytes),
    /// An error reply (`-ERR ...` or a RESP3 blob error `!`).
    Error(ServerError),
    /// An integer (`:`).
    Int(i64),
    /// A bulk string (`$`).
    BulkString(Bytes),
    /// An array (`*`).
    Array(Vec<Value>),
    /// A RESP3 map (`%`), in the order the server sent it.
    Map(Vec<(Value, Value)>),
    /// A RESP3 set (`~`), in the order the server sent it.
    Set(Vec<Value>),
    /// A RESP3 double (`,`), including `inf`, `-inf` and `nan`.
    Double(f64),
    /// A RESP3 boolean (`#t` / `#f`).
    Boolean(bool),
    /// A RESP3 big number (`(`), as its decimal digits with an optional sign.
    BigNumber(Bytes),
    /// A RESP3 verbatim string (`=`): a three-byte format such as `txt` and the text.
    Verbatim {
        /// The format, e.g. `txt` or `mkd`.
        format: [u8; 3],
        /// The text itself.
        text: Bytes,
    },
    /// A RESP3 out-of-band push (`>`), e.g. a pub/sub message or an invalidation.
    Push(Vec<Value>),
    /// A RESP3 attribute (`|`) followed by the value it annotates.
    Attribute {
        /// The attribute map.
        attributes: Vec<(Value, Value)>,
        /// The reply the attributes belong to.
        value: Box<Value>,
    },
}

/// An error reply from the server: its code (the first word, e.g. `ERR`,
/// `MOVED`, `WRONGPASS`) and the rest of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// The error code, the first word of the reply.
    pub code: String,
    /// The message after the code (may be empty).
    pub message: String,
}

impl ServerError {
    /// Splits a raw error line (`ERR unknown command`) into code and message.
    pub fn from_line(line: &[u8]) -> ServerError {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\r', '\n']);
        match text.split_once(' ') {
            Some((code, message)) => ServerError {
                code: code.to_string(),
                message: message.to_string(),
            },
            None => ServerError {
                code: text.to_string(),
                message: String::new(),
            },
        }
    }
}

impl ServerError {
    /// Splits a RESP3 blob error's payload (`!<len>\r\n<payload>\r\n`) into
    /// code and message. Unlike [`ServerError::from_line`] nothing is trimmed:
    /// a length-prefixed payload may legitimately end in CR or LF.
    pub fn from_blob(payload: &[u8]) -> ServerError {
        let text = String::from_utf8_lossy(payload);
        match text.split_once(' ') {
            Some((code, message)) => ServerError {
                code: code.to_string(),
                message: message.to_string(),
            },
            None => ServerError {
                code: text.into_owned(),
                message: String::new(),
            },
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{} {}", self.code, self.message)
        }
    }
}

impl Value {
    /// Whether this is [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The bytes of a simple, bulk, verbatim or big-number string.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::SimpleString(b) | Value::BulkString(b) | Value::BigNumber(b) => Some(b),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The text of a string reply, when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The integer of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array, set or push reply.
    pub fn as_slice(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// Whether this is the simple string `OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Value::SimpleString(s) if s.as_ref() == b"OK")
    }

    /// Looks up `key` in a RESP3 map, or in a RESP2 flat array of key/value
    /// pairs (the shape `HELLO` and `CLUSTER SHARDS` take under RESP2).
    pub fn map_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_bytes().is_some_and(|b| b.as_ref() == key.as_bytes()))
                .map(|(_, v)| v),
            Value::Array(items) => items
                .chunks_exact(2)
                .find(|kv| {
                    kv[0]
                        .as_bytes()
                        .is_some_and(|b| b.as_ref() == key.as_bytes())
                })
                .map(|kv| &kv[1]),
            _ => None,
        }
    }
}
