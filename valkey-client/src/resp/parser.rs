//! The incremental RESP2/RESP3 parser.
//!
//! [`decode`] runs two passes over the buffer. The first walks the bytes as a
//! `&[u8]`, validating everything and finding where the first complete value
//! ends, without allocating; if the buffer holds only part of a value it stops
//! there and nothing is consumed. The second pass runs the same code over the
//! frozen frame and builds the [`Value`], with every string a zero-copy slice of
//! that frame. Sharing one generic walker keeps the two passes from ever
//! disagreeing about what is valid.

use super::{ServerError, Value};
use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Limits the parser enforces, so that a misbehaving or hostile peer cannot
/// make the client allocate or recurse without bound.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest bulk string, blob error or verbatim string accepted, in bytes;
    /// also bounds the length of simple-string, error and big-number lines.
    pub max_bulk_len: usize,
    /// Deepest nesting of aggregates (arrays, maps, sets, pushes, attributes).
    /// A top-level array is at depth 1.
    pub max_depth: usize,
    /// Most elements in one aggregate. A map or attribute of `n` pairs counts
    /// as `2 * n` elements, since that is how many values it holds.
    pub max_elements: usize,
    /// Largest whole reply, in bytes, counted while it arrives: a reply
    /// that never ends (an endless array of small strings) is refused once
    /// this much of it is buffered, however small each part is.
    pub max_reply_len: usize,
}

/// The deepest nesting ever accepted, whatever [`Limits::max_depth`] says:
/// the parser is recursive, and this keeps it well within a 2 MiB stack
/// (tokio's default for worker threads).
pub const MAX_DEPTH_CAP: usize = 200;

impl Default for Limits {
    /// * `max_bulk_len` = 512 MiB: the server's own `proto-max-bulk-len`
    ///   default, so no stored string can legitimately be longer.
    /// * `max_depth` = 128: real replies nest a handful of levels; the bound
    ///   keeps the recursive parser far away from a stack overflow.
    /// * `max_elements` = 2^26 (about 67 million): as many `Value`s already
    ///   need gigabytes of memory, so a larger claim is treated as garbage.
    /// * `max_reply_len` = 1 GiB: twice the largest string.
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 << 20,
            max_depth: 128,
            max_elements: 1 << 26,
            max_reply_len: 1 << 30,
        }
    }
}

/// A protocol violation: the bytes received are not valid RESP, or exceed the
/// [`Limits`]. The connection cannot be resynchronised after one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    message: String,
}

impl ProtocolError {
    fn new(message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            message: message.into(),
        }
    }

    /// What was wrong with the input.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RESP protocol error: {}", self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// A top-level bulk string whose header is plain digits then CRLF, within
/// the bulk limit: `Some(None)` while incomplete, `Some(Some(value))` once
/// whole. `None` for anything else (a null, a malformed or oversized header,
/// missing CRLF after the data), which the general path then decodes or
/// reports, so both paths accept exactly the same input.
#[inline]
fn plain_bulk(buf: &mut BytesMut, limits: &Limits) -> Option<Option<Value>> {
    let mut len: usize = 0;
    let mut i = 1;
    loop {
        match *buf.get(i)? {
            b'\r' if i > 1 => break,
            digit @ b'0'..=b'9' => {
                len = len
                    .checked_mul(10)?
                    .checked_add(usize::from(digit - b'0'))?;
                i += 1;
            }
            _ => return None,
        }
    }
    if *buf.get(i + 1)? != b'\n' || len > limits.max_bulk_len {
        return None;
    }
    let start = i + 2;
    let end = start.checked_add(len)?;
    match (buf.get(end), buf.get(end.wrapping_add(1))) {
        (Some(b'\r'), Some(b'\n')) => {}
        (None, _) | (Some(b'\r'), None) => return Some(None),
        _ => return None,
    }
    let frame = buf.split_to(end + 2).freeze();
    Some(Some(Value::BulkString(frame.slice(start..end))))
}

/// Decodes the first complete value in `buf`.
///
/// Returns `Ok(None)` and consumes nothing when `buf` does not yet hold a
/// complete value; otherwise consumes exactly that value's bytes and returns
/// it. Strings in the value share memory with the consumed bytes. On error
/// nothing is consumed, but the stream should be considered broken.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Value>, ProtocolError> {
    // The most common reply of all, without touching the buffer's refcount.
    if buf.starts_with(b"+OK\r\n") {
        buf.advance(5);
        return Ok(Some(Value::SimpleString(Bytes::from_static(b"OK"))));
    }
    // The next most common: one bulk string (a GET), in one scan.
    if buf.first() == Some(&b'$')
        && let Some(value) = plain_bulk(buf, limits)
    {
        return Ok(value);
    }
    let empty = Bytes::new();
    let mut check = Walker::<false> {
        src: &buf[..],
        frame: &empty,
        pos: 0,
        limits,
    };
    match check.value(0) {
        Ok(_) => {}
        Err(Fail::Incomplete) if buf.len() > limits.max_reply_len => {
            return Err(ProtocolError::new(format!(
                "a reply longer than the limit of {} bytes",
                limits.max_reply_len
            )));
        }
        Err(Fail::Incomplete) => return Ok(None),
        Err(Fail::Invalid(e)) => return Err(e),
    }
    let len = check.pos;
    // Scalars that hold no bytes (integers, nulls, booleans, doubles) are
    // built from the buffer in place: no shared frame to split off.
    let holds_no_bytes = match buf.first() {
        Some(b':' | b'_' | b'#' | b',') => true,
        Some(b'$' | b'*') => buf.get(1) == Some(&b'-'),
        _ => false,
    };
    if holds_no_bytes {
        let mut build = Walker::<true> {
            src: &buf[..len],
            frame: &empty,
            pos: 0,
            limits,
        };
        let value = build.value(0);
        let consumed = build.pos;
        return match value {
            Ok(value) if consumed == len => {
                buf.advance(len);
                Ok(Some(value))
            }
            Err(Fail::Invalid(e)) => Err(e),
            _ => Err(ProtocolError::new(
                "internal error: the check and build passes disagree",
            )),
        };
    }
    let frame = buf.split_to(len).freeze();
    let mut build = Walker::<true> {
        src: &frame,
        frame: &frame,
        pos: 0,
        limits,
    };
    match build.value(0) {
        Ok(value) if build.pos == len => Ok(Some(value)),
        Err(Fail::Invalid(e)) => Err(e),
        // Both passes run the same code over the same bytes, so this is a bug.
        _ => Err(ProtocolError::new(
            "internal error: the check and build passes disagree",
        )),
    }
}

/// Why a walk stopped early.
enum Fail {
    /// The buffer ends inside the value; wait for more bytes.
    Incomplete,
    /// The bytes are not valid RESP.
    Invalid(ProtocolError),
}

type Walk<T> = Result<T, Fail>;

fn invalid<T>(message: String) -> Walk<T> {
    Err(Fail::Invalid(ProtocolError::new(message)))
}

/// Lines holding a number (lengths, integers, doubles) are short; a longer
/// one without a terminator is garbage, not something to wait for.
const MAX_NUMBER_LINE: usize = 64;

/// Shows at most this many bytes of offending input in error messages.
const MAX_SHOWN: usize = 40;

/// Escapes (a prefix of) raw input for an error message.
fn show(bytes: &[u8]) -> String {
    let shown = bytes.get(..MAX_SHOWN).unwrap_or(bytes);
    let mut s = shown.escape_ascii().to_string();
    if shown.len() < bytes.len() {
        s.push_str("...");
    }
    s
}

/// Walks one value. With `BUILD == false` it only validates and measures
/// (returning placeholder values, allocating nothing); with `BUILD == true`
/// `src` is `frame` and it builds the real [`Value`].
struct Walker<'a, const BUILD: bool> {
    src: &'a [u8],
    frame: &'a Bytes,
    pos: usize,
    limits: &'a Limits,
}

impl<'a, const BUILD: bool> Walker<'a, BUILD> {
    /// The bytes `start..end` of the input (empty if out of range, which the
    /// walker's own bookkeeping rules out).
    fn get(&self, start: usize, end: usize) -> &'a [u8] {
        self.src.get(start..end).unwrap_or(&[])
    }

    /// A zero-copy slice of the frame in the build pass; nothing in the check pass.
    fn bytes(&self, start: usize, end: usize) -> Bytes {
        if BUILD && start <= end && end <= self.frame.len() {
            self.frame.slice(start..end)
        } else {
            Bytes::new()
        }
    }

    /// Reads a line of at most `max` bytes ending in CRLF, advancing past the
    /// CRLF and returning the bounds of its content.
    fn line(&mut self, what: &str, max: usize) -> Walk<(usize, usize)> {
        let start = self.pos;
        let rest = self.src.get(start..).unwrap_or(&[]);
        let window = rest.get(..max.saturating_add(1)).unwrap_or(rest);
        match window.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(i) if i > max => invalid(format!("{what} line longer than {max} bytes")),
            Some(i) => match (window.get(i), rest.get(i + 1)) {
                (Some(b'\r'), Some(b'\n')) => {
                    self.pos = start + i + 2;
                    Ok((start, start + i))
                }
                (Some(b'\r'), None) => Err(Fail::Incomplete),
                (Some(b'\r'), Some(_)) => invalid(format!("CR not followed by LF in {what} line")),
                _ => invalid(format!("bare LF (without CR) in {what} line")),
            },
            None if window.len() > max => invalid(format!("{what} line longer than {max} bytes")),
            None => Err(Fail::Incomplete),
        }
    }

    /// Reads a length header: digits, or `-1` (returned as `None`) when
    /// `null_ok`.
    fn length(&mut self, what: &str, null_ok: bool) -> Walk<Option<usize>> {
        if let Some(n) = self.plain_length() {
            return Ok(Some(n));
        }
        // Everything else (null, errors, incomplete) takes the general path.
        let (s, e) = self.line(what, MAX_NUMBER_LINE)?;
        let text = self.get(s, e);
        if text == b"-1" && null_ok {
            return Ok(None);
        }
        if text.is_empty() {
            return invalid(format!("empty length in {what} header"));
        }
        let mut n: usize = 0;
        for &b in text {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return invalid(format!("invalid length `{}` in {what} header", show(text)));
            }
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(digit)))
            {
                Some(n) => n,
                None => {
                    return invalid(format!(
                        "length `{}` in {what} header overflows",
                        show(text)
                    ));
                }
            };
        }
        Ok(Some(n))
    }

    /// The hot path of [`Self::length`]: one or more digits then CRLF, all in
    /// the buffer, in a single scan.
    #[inline]
    fn plain_length(&mut self) -> Option<usize> {
        let rest = self.src.get(self.pos..)?;
        let mut n: usize = 0;
        for (i, &b) in rest.iter().enumerate().take(MAX_NUMBER_LINE) {
            let digit = b.wrapping_sub(b'0');
            if digit <= 9 {
                n = n.checked_mul(10)?.checked_add(usize::from(digit))?;
            } else if b == b'\r' && i > 0 && rest.get(i + 1) == Some(&b'\n') {
                self.pos += i + 2;
                return Some(n);
            } else {
                return None;
            }
        }
        None
    }

    /// Reads a length-prefixed payload of `len` bytes plus its CRLF, after
    /// checking `len` against the limit (before waiting for any of the data).
    fn blob(&mut self, what: &str, len: usize) -> Walk<(usize, usize)> {
        if len > self.limits.max_bulk_len {
            return invalid(format!(
                "{what} of {len} bytes exceeds the limit of {}",
                self.limits.max_bulk_len
            ));
        }
        let start = self.pos;
        let Some(end) = start.checked_add(len) else {
            return invalid(format!("{what} length {len} overflows"));
        };
        if end > self.src.len() {
            return Err(Fail::Incomplete);
        }
        match (self.src.get(end), self.src.get(end.wrapping_add(1))) {
            (Some(b'\r'), Some(b'\n')) => {
                self.pos = end + 2;
                Ok((start, end))
            }
            (None, _) | (Some(b'\r'), None) => Err(Fail::Incomplete),
            _ => invalid(format!("{what} of {len} bytes not followed by CRLF")),
        }
    }

    /// Checks an aggregate's size (`n` items, each holding `per` values) and
    /// nesting; returns the depth of its elements.
    fn enter(&self, what: &str, n: usize, per: usize, depth: usize) -> Walk<usize> {
        let max = self.limits.max_elements;
        if n.checked_mul(per).is_none_or(|elements| elements > max) {
            let unit = if per == 2 { "pairs" } else { "elements" };
            return invalid(format!(
                "{what} of {n} {unit} exceeds the limit of {max} elements"
            ));
        }
        let max_depth = self.limits.max_depth.min(MAX_DEPTH_CAP);
        if depth >= max_depth {
            return invalid(format!(
                "{what} nested deeper than the limit of {max_depth}"
            ));
        }
        Ok(depth + 1)
    }

    /// A capacity for `n` claimed elements that the bytes can actually back:
    /// every element takes at least three bytes (`_\r\n`).
    fn capacity(&self, n: usize) -> usize {
        if BUILD {
            n.min(self.src.len().saturating_sub(self.pos) / 3)
        } else {
            0
        }
    }

    fn elements(&mut self, n: usize, depth: usize) -> Walk<Vec<Value>> {
        let mut items = Vec::with_capacity(self.capacity(n));
        for _ in 0..n {
            let v = self.value(depth)?;
            if BUILD {
                items.push(v);
            }
        }
        Ok(items)
    }

    fn pairs(&mut self, n: usize, depth: usize) -> Walk<Vec<(Value, Value)>> {
        let mut items = Vec::with_capacity(self.capacity(n.saturating_mul(2)) / 2);
        for _ in 0..n {
            let k = self.value(depth)?;
            let v = self.value(depth)?;
            if BUILD {
                items.push((k, v));
            }
        }
        Ok(items)
    }

    /// Walks one value starting at `self.pos`, nested inside `depth` aggregates.
    #[inline]
    fn value(&mut self, depth: usize) -> Walk<Value> {
        // Bulk strings dominate replies; keep their path small enough to inline
        // into the aggregate loops.
        if self.src.get(self.pos) == Some(&b'$') {
            self.pos += 1;
            return match self.length("bulk string", true)? {
                None => Ok(Value::Nil),
                Some(len) => {
                    let (s, e) = self.blob("bulk string", len)?;
                    Ok(Value::BulkString(self.bytes(s, e)))
                }
            };
        }
        self.other(depth)
    }

    /// Walks any value but a bulk string.
    fn other(&mut self, depth: usize) -> Walk<Value> {
        let Some(&tag) = self.src.get(self.pos) else {
            return Err(Fail::Incomplete);
        };
        self.pos += 1;
        let max_line = self.limits.max_bulk_len;
        match tag {
            b'+' => {
                let (s, e) = self.line("simple string", max_line)?;
                Ok(Value::SimpleString(self.bytes(s, e)))
            }
            b'-' => {
                let (s, e) = self.line("error", max_line)?;
                Ok(self.error(s, e))
            }
            b':' => {
                let (s, e) = self.line("integer", MAX_NUMBER_LINE)?;
                match parse_i64(self.get(s, e)) {
                    Some(i) => Ok(Value::Int(i)),
                    None => invalid(format!("invalid integer `{}`", show(self.get(s, e)))),
                }
            }
            b'$' => match self.length("bulk string", true)? {
                None => Ok(Value::Nil),
                Some(len) => {
                    let (s, e) = self.blob("bulk string", len)?;
                    Ok(Value::BulkString(self.bytes(s, e)))
                }
            },
            b'*' => match self.length("array", true)? {
                None => Ok(Value::Nil),
                Some(n) => {
                    let depth = self.enter("array", n, 1, depth)?;
                    Ok(Value::Array(self.elements(n, depth)?))
                }
            },
            b'~' | b'>' => {
                let what = if tag == b'~' { "set" } else { "push" };
                let n = self.length(what, false)?.unwrap_or(0);
                let depth = self.enter(what, n, 1, depth)?;
                let items = self.elements(n, depth)?;
                Ok(if tag == b'~' {
                    Value::Set(items)
                } else {
                    Value::Push(items)
                })
            }
            b'%' => {
                let n = self.length("map", false)?.unwrap_or(0);
                let depth = self.enter("map", n, 2, depth)?;
                Ok(Value::Map(self.pairs(n, depth)?))
            }
            b'|' => {
                let n = self.length("attribute", false)?.unwrap_or(0);
                let depth = self.enter("attribute", n, 2, depth)?;
                let attributes = self.pairs(n, depth)?;
                let value = Box::new(self.value(depth)?);
                Ok(Value::Attribute { attributes, value })
            }
            b'_' => {
                let (s, e) = self.line("null", MAX_NUMBER_LINE)?;
                if s == e {
                    Ok(Value::Nil)
                } else {
                    invalid(format!("unexpected `{}` after null", show(self.get(s, e))))
                }
            }
            b',' => {
                let (s, e) = self.line("double", MAX_NUMBER_LINE)?;
                match parse_f64(self.get(s, e)) {
                    Some(d) => Ok(Value::Double(d)),
                    None => invalid(format!("invalid double `{}`", show(self.get(s, e)))),
                }
            }
            b'#' => {
                let (s, e) = self.line("boolean", MAX_NUMBER_LINE)?;
                match self.get(s, e) {
                    b"t" => Ok(Value::Boolean(true)),
                    b"f" => Ok(Value::Boolean(false)),
                    other => invalid(format!("invalid boolean `{}`", show(other))),
                }
            }
            b'(' => {
                let (s, e) = self.line("big number", max_line)?;
                let text = self.get(s, e);
                let digits = match text.split_first() {
                    Some((b'+' | b'-', rest)) => rest,
                    _ => text,
                };
                if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                    return invalid(format!("invalid big number `{}`", show(text)));
                }
                Ok(Value::BigNumber(self.bytes(s, e)))
            }
            b'!' => {
                let len = self.length("blob error", false)?.unwrap_or(0);
                let (s, e) = self.blob("blob error", len)?;
                Ok(if BUILD {
                    Value::Error(ServerError::from_blob(self.get(s, e)))
                } else {
                    Value::Nil
                })
            }
            b'=' => {
                let len = self.length("verbatim string", false)?.unwrap_or(0);
                let (s, e) = self.blob("verbatim string", len)?;
                match self.get(s, e) {
                    [a, b, c, b':', ..] => Ok(Value::Verbatim {
                        format: [*a, *b, *c],
                        text: self.bytes(s + 4, e),
                    }),
                    _ => invalid(format!(
                        "verbatim string `{}` lacks a `fmt:` prefix",
                        show(self.get(s, e))
                    )),
                }
            }
            other => invalid(format!(
                "unknown RESP type byte `{}` (0x{other:02x})",
                other.escape_ascii()
            )),
        }
    }

    /// The error of a `-` line.
    fn error(&self, start: usize, end: usize) -> Value {
        if BUILD {
            Value::Error(ServerError::from_line(self.get(start, end)))
        } else {
            Value::Nil
        }
    }
}

/// Parses `[+|-]digits` as an `i64`, rejecting overflow.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n = n.checked_mul(10)?;
        // Accumulating negatives directly lets i64::MIN parse.
        n = if negative {
            n.checked_sub(i64::from(digit))?
        } else {
            n.checked_add(i64::from(digit))?
        };
    }
    Some(n)
}

/// Parses a RESP3 double: `inf`, `-inf`, `nan`, or a decimal with an optional
/// sign, fraction and exponent.
fn parse_f64(text: &[u8]) -> Option<f64> {
    match text {
        b"inf" | b"+inf" => return Some(f64::INFINITY),
        b"-inf" => return Some(f64::NEG_INFINITY),
        b"nan" | b"-nan" => return Some(f64::NAN),
        _ => {}
    }
    // Only plain decimal syntax: this also keeps Rust's parser from accepting
    // words like `infinity`.
    if !text
        .iter()
        .all(|&b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}
