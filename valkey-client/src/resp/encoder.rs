//! The RESP encoder: commands for the client, any [`Value`] for fake servers
//! and tests.

use super::Value;
use bytes::{BufMut, BytesMut};

/// Appends a command: an array header `*N\r\n`, then each argument as a bulk
/// string `$len\r\narg\r\n`. Writes straight into `out`, allocating nothing
/// else.
pub fn encode_command<'a>(out: &mut BytesMut, args: impl ExactSizeIterator<Item = &'a [u8]>) {
    header(out, b'*', args.len());
    for arg in args {
        bulk(out, b'$', arg);
    }
}

/// Appends the RESP3 encoding of `value`.
///
/// [`Value::Nil`] becomes the RESP3 null `_`. An error whose code or message
/// contains CR or LF is written as a blob error `!`, since a `-` line cannot
/// hold it. A simple string containing CR or LF cannot be represented at all,
/// so it is written as a bulk string instead.
pub fn encode_value(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Nil => out.put_slice(b"_\r\n"),
        Value::SimpleString(s) => {
            if has_newline(s) {
                bulk(out, b'$', s);
            } else {
                line(out, b'+', s);
            }
        }
        Value::Error(e) => {
            let (code, message) = (e.code.as_bytes(), e.message.as_bytes());
            let sep: &[u8] = if message.is_empty() { b"" } else { b" " };
            if has_newline(code) || has_newline(message) {
                header(out, b'!', code.len() + sep.len() + message.len());
            } else {
                out.put_u8(b'-');
            }
            out.put_slice(code);
            out.put_slice(sep);
            out.put_slice(message);
            out.put_slice(b"\r\n");
        }
        Value::Int(i) => {
            out.put_u8(b':');
            write_i64(out, *i);
            out.put_slice(b"\r\n");
        }
        Value::BulkString(s) => bulk(out, b'$', s),
        Value::Array(items) => aggregate(out, b'*', items),
        Value::Set(items) => aggregate(out, b'~', items),
        Value::Push(items) => aggregate(out, b'>', items),
        Value::Map(pairs) => map(out, b'%', pairs),
        Value::Double(d) => {
            out.put_u8(b',');
            if d.is_nan() {
                out.put_slice(b"nan");
            } else if d.is_infinite() {
                out.put_slice(if *d > 0.0 { b"inf" } else { b"-inf" });
            } else {
                // Debug prints the shortest text that parses back to the same
                // f64, switching to exponent notation for huge or tiny values.
                use std::fmt::Write;
                let _ = write!(out, "{d:?}");
            }
            out.put_slice(b"\r\n");
        }
        Value::Boolean(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::BigNumber(n) => line(out, b'(', n),
        Value::Verbatim { format, text } => {
            header(out, b'=', text.len() + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Value::Attribute { attributes, value } => {
            map(out, b'|', attributes);
            encode_value(out, value);
        }
    }
}

fn has_newline(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\r' || b == b'\n')
}

fn line(out: &mut BytesMut, tag: u8, content: &[u8]) {
    out.reserve(content.len() + 3);
    out.put_u8(tag);
    out.put_slice(content);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, tag: u8, content: &[u8]) {
    // One reservation for header, payload and CRLF.
    out.reserve(content.len() + 24);
    header(out, tag, content.len());
    out.put_slice(content);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Value]) {
    header(out, tag, items.len());
    for item in items {
        encode_value(out, item);
    }
}

fn map(out: &mut BytesMut, tag: u8, pairs: &[(Value, Value)]) {
    header(out, tag, pairs.len());
    for (k, v) in pairs {
        encode_value(out, k);
        encode_value(out, v);
    }
}

/// Writes `tag`, the decimal `n` and CRLF.
fn header(out: &mut BytesMut, tag: u8, n: usize) {
    put_header(out, tag, n);
}

/// Writes a RESP length line (`$12\r\n`) into `out`. Lengths under 100
/// are copied as fixed-size arrays, which compile to plain stores instead
/// of a `memcpy` call: two of the three length lines of a typical command.
#[inline]
pub(crate) fn put_header(out: &mut BytesMut, kind: u8, n: usize) {
    if n < 10 {
        out.put_slice(&[kind, b'0' + n as u8, b'\r', b'\n']);
    } else if n < 100 {
        out.put_slice(&[
            kind,
            b'0' + (n / 10) as u8,
            b'0' + (n % 10) as u8,
            b'\r',
            b'\n',
        ]);
    } else {
        out.put_slice(Header::new(kind, n).as_bytes());
    }
}

fn write_i64(out: &mut BytesMut, i: i64) {
    out.put_slice(itoa::Buffer::new().format(i).as_bytes());
}

/// A RESP length line (`$12\r\n`, `*3\r\n`) built on the stack. Lengths
/// under 100 (nearly all of them) skip the general number formatting.
pub(crate) struct Header {
    buf: [u8; 24],
    len: usize,
}

impl Header {
    pub(crate) fn new(kind: u8, n: usize) -> Header {
        let mut buf = [0u8; 24];
        buf[0] = kind;
        let digits = if n < 10 {
            buf[1] = b'0' + n as u8;
            1
        } else if n < 100 {
            buf[1] = b'0' + (n / 10) as u8;
            buf[2] = b'0' + (n % 10) as u8;
            2
        } else {
            let mut f = itoa::Buffer::new();
            let text = f.format(n).as_bytes();
            buf[1..1 + text.len()].copy_from_slice(text);
            text.len()
        };
        buf[1 + digits] = b'\r';
        buf[2 + digits] = b'\n';
        Header {
            buf,
            len: 3 + digits,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_the_general_formatting() {
        for n in [0, 1, 9, 10, 42, 99, 100, 12345, usize::MAX] {
            let mut out = BytesMut::new();
            put_header(&mut out, b'*', n);
            assert_eq!(&out[..], format!("*{n}\r\n").as_bytes());
            assert_eq!(
                Header::new(b'$', n).as_bytes(),
                format!("${n}\r\n").as_bytes()
            );
        }
    }
}
