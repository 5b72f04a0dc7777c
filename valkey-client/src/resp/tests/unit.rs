//! Hand-written cases: every type, RESP2 nulls, each class of error, limits.

use super::{decode_all, decode_with, fails, incomplete, one};
use crate::resp::{Limits, ServerError, Value, encode_command, encode_value};
use bytes::{Bytes, BytesMut};
use std::time::{Duration, Instant};

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn bulk(s: &'static str) -> Value {
    Value::BulkString(b(s))
}

#[test]
fn scalars() {
    assert_eq!(one(b"+OK\r\n"), Value::SimpleString(b("OK")));
    assert_eq!(one(b"+\r\n"), Value::SimpleString(b("")));
    assert_eq!(one(b":0\r\n"), Value::Int(0));
    assert_eq!(one(b":-42\r\n"), Value::Int(-42));
    assert_eq!(one(b":+7\r\n"), Value::Int(7));
    assert_eq!(one(b":9223372036854775807\r\n"), Value::Int(i64::MAX));
    assert_eq!(one(b":-9223372036854775808\r\n"), Value::Int(i64::MIN));
    assert_eq!(one(b"$5\r\nhello\r\n"), bulk("hello"));
    assert_eq!(one(b"$0\r\n\r\n"), bulk(""));
    assert_eq!(one(b"$4\r\na\r\nb\r\n"), bulk("a\r\nb"));
    assert_eq!(one(b"#t\r\n"), Value::Boolean(true));
    assert_eq!(one(b"#f\r\n"), Value::Boolean(false));
    assert_eq!(
        one(b"(12345678901234567890123\r\n"),
        Value::BigNumber(b("12345678901234567890123"))
    );
    assert_eq!(one(b"(-1\r\n"), Value::BigNumber(b("-1")));
    assert_eq!(
        one(b"=15\r\ntxt:Some string\r\n"),
        Value::Verbatim {
            format: *b"txt",
            text: b("Some string")
        }
    );
    assert_eq!(
        one(b"=4\r\nmkd:\r\n"),
        Value::Verbatim {
            format: *b"mkd",
            text: b("")
        }
    );
}

#[test]
fn doubles() {
    for (text, want) in [
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("10", 10.0),
        ("1e300", 1e300),
        ("1.5E-7", 1.5e-7),
        ("+2", 2.0),
        ("inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
    ] {
        assert_eq!(
            one(format!(",{text}\r\n").as_bytes()),
            Value::Double(want),
            "{text}"
        );
    }
    assert!(matches!(one(b",nan\r\n"), Value::Double(d) if d.is_nan()));
    for bad in ["", "abc", "1.2.3", "infinity", "1e", " 1"] {
        assert!(
            fails(format!(",{bad}\r\n").as_bytes()).contains("invalid double"),
            "{bad}"
        );
    }
}

#[test]
fn nulls() {
    assert_eq!(one(b"_\r\n"), Value::Nil);
    assert_eq!(one(b"$-1\r\n"), Value::Nil);
    assert_eq!(one(b"*-1\r\n"), Value::Nil);
    assert!(fails(b"_x\r\n").contains("after null"));
}

#[test]
fn errors() {
    let e = ServerError {
        code: "ERR".into(),
        message: "unknown command".into(),
    };
    assert_eq!(one(b"-ERR unknown command\r\n"), Value::Error(e.clone()));
    assert_eq!(one(b"!19\r\nERR unknown command\r\n"), Value::Error(e));
    let moved = ServerError {
        code: "MOVED".into(),
        message: "3999 127.0.0.1:6381".into(),
    };
    assert_eq!(one(b"-MOVED 3999 127.0.0.1:6381\r\n"), Value::Error(moved));
    // Blob errors are kept byte for byte, trailing CR/LF included (found by fuzzing).
    let crlf = ServerError {
        code: "E\r".into(),
        message: "x\n".into(),
    };
    assert_eq!(one(b"!5\r\nE\r x\n\r\n"), Value::Error(crlf.clone()));
    let mut out = BytesMut::new();
    encode_value(&mut out, &Value::Error(crlf.clone()));
    assert_eq!(one(&out), Value::Error(crlf));
    let bare = ServerError {
        code: "LOADING".into(),
        message: String::new(),
    };
    assert_eq!(one(b"-LOADING\r\n"), Value::Error(bare));
}

#[test]
fn aggregates() {
    assert_eq!(one(b"*0\r\n"), Value::Array(vec![]));
    assert_eq!(
        one(b"*3\r\n:1\r\n$1\r\na\r\n*1\r\n_\r\n"),
        Value::Array(vec![
            Value::Int(1),
            bulk("a"),
            Value::Array(vec![Value::Nil])
        ])
    );
    assert_eq!(
        one(b"%2\r\n+a\r\n:1\r\n+b\r\n#t\r\n"),
        Value::Map(vec![
            (Value::SimpleString(b("a")), Value::Int(1)),
            (Value::SimpleString(b("b")), Value::Boolean(true)),
        ])
    );
    assert_eq!(
        one(b"~2\r\n:1\r\n:2\r\n"),
        Value::Set(vec![Value::Int(1), Value::Int(2)])
    );
    assert_eq!(
        one(b">2\r\n+message\r\n$2\r\nhi\r\n"),
        Value::Push(vec![Value::SimpleString(b("message")), bulk("hi")])
    );
    assert_eq!(
        one(b"|1\r\n+ttl\r\n:3600\r\n*1\r\n:2\r\n"),
        Value::Attribute {
            attributes: vec![(Value::SimpleString(b("ttl")), Value::Int(3600))],
            value: Box::new(Value::Array(vec![Value::Int(2)])),
        }
    );
}

#[test]
fn strings_are_slices_of_the_input() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nabc\r\n+OK\r\n:1\r\n"[..]);
    let base = buf.as_ptr() as usize;
    let v = crate::resp::decode(&mut buf, &Limits::default())
        .unwrap()
        .unwrap();
    let items = v.as_slice().unwrap();
    assert_eq!(items[0].as_bytes().unwrap().as_ptr() as usize, base + 8);
    assert_eq!(items[1].as_bytes().unwrap().as_ptr() as usize, base + 14);
    assert_eq!(&buf[..], b":1\r\n", "the next value stays in the buffer");
}

#[test]
fn incomplete_inputs_consume_nothing() {
    for input in [
        "",
        "+",
        "+OK",
        "+OK\r",
        ":12",
        "$5\r\nhel",
        "$5\r\nhello",
        "$5\r\nhello\r",
        "*2\r\n:1\r\n",
        "*2\r\n",
        "%1\r\n+a\r\n",
        "|1\r\n+a\r\n+b\r\n",
        "=8\r\ntxt:",
        "!3\r\nER",
        "*1\r\n*1\r\n",
    ] {
        incomplete(input.as_bytes());
    }
}

#[test]
fn malformed_lines_and_lengths() {
    assert!(fails(b"+OK\nmore").contains("bare LF"));
    assert!(fails(b":1\n").contains("bare LF"));
    assert!(fails(b"+OK\rX\n").contains("CR not followed by LF"));
    assert_eq!(
        fails(b"$abc\r\n"),
        "invalid length `abc` in bulk string header"
    );
    assert!(fails(b"$\r\n").contains("empty length"));
    assert!(fails(b"*+1\r\n").contains("invalid length `+1`"));
    assert!(fails(b"$-2\r\n").contains("invalid length `-2`"));
    assert!(fails(b"*-5\r\n").contains("invalid length"));
    assert!(fails(b"%-1\r\n").contains("invalid length"), "no null map");
    assert!(fails(b"$99999999999999999999999\r\n").contains("overflows"));
    assert!(fails(b"$3\r\nabcde\r\n").contains("not followed by CRLF"));
    assert!(fails(b"$3\r\nabc\n").contains("not followed by CRLF"));
    assert!(fails(b"$3\r\nabc\rx").contains("not followed by CRLF"));
    assert!(fails(b":12a\r\n").contains("invalid integer `12a`"));
    assert!(fails(b":\r\n").contains("invalid integer"));
    assert!(fails(b":9223372036854775808\r\n").contains("invalid integer"));
    assert!(fails(b"#x\r\n").contains("invalid boolean `x`"));
    assert!(fails(b"#true\r\n").contains("invalid boolean"));
    assert!(fails(b"(12a\r\n").contains("invalid big number"));
    assert!(fails(b"(-\r\n").contains("invalid big number"));
    assert!(fails(b"=3\r\ntxt\r\n").contains("lacks a `fmt:` prefix"));
    assert!(fails(b"=5\r\ntxt-x\r\n").contains("lacks a `fmt:` prefix"));
    assert_eq!(fails(b"?1\r\n"), "unknown RESP type byte `?` (0x3f)");
    assert!(fails(b"\x00").contains("0x00"));
    // An error deep inside an aggregate is still reported.
    assert!(fails(b"*2\r\n:1\r\n*1\r\n#z\r\n").contains("invalid boolean"));
    // A number line that never ends is garbage, not something to wait for.
    assert!(fails(&[b':'; 100]).contains("longer than"));
}

#[test]
fn huge_bulk_is_rejected_from_its_header() {
    let start = Instant::now();
    assert_eq!(
        fails(b"$1099511627776\r\n"),
        "bulk string of 1099511627776 bytes exceeds the limit of 536870912"
    );
    assert!(fails(b"!1099511627776\r\n").contains("exceeds the limit"));
    assert!(fails(b"=1099511627776\r\n").contains("exceeds the limit"));
    assert!(start.elapsed() < Duration::from_secs(1));
    let small = Limits {
        max_bulk_len: 4,
        ..Limits::default()
    };
    assert!(decode_with(b"$5\r\n", &small).0.is_err());
    assert!(
        decode_with(b"+hello\r\n", &small)
            .0
            .unwrap_err()
            .message()
            .contains("longer than 4")
    );
    assert!(decode_with(b"$4\r\nabcd\r\n", &small).0.unwrap().is_some());
}

#[test]
fn huge_aggregates_allocate_nothing_up_front() {
    let start = Instant::now();
    let msg = fails(b"*1099511627776\r\n");
    assert_eq!(
        msg,
        "array of 1099511627776 elements exceeds the limit of 67108864 elements"
    );
    assert!(
        fails(b"%40000000\r\n").contains("pairs exceeds the limit"),
        "maps count 2 per pair"
    );
    assert!(fails(b"%18446744073709551615\r\n").contains("exceeds the limit"));
    // Within the limit: waits for the elements without reserving room for them.
    incomplete(b"*1000000\r\n");
    incomplete(b"*67108864\r\n:1\r\n");
    assert!(start.elapsed() < Duration::from_secs(1));
    let small = Limits {
        max_elements: 3,
        ..Limits::default()
    };
    assert!(
        decode_with(b"*3\r\n_\r\n_\r\n_\r\n", &small)
            .0
            .unwrap()
            .is_some()
    );
    assert!(decode_with(b"*4\r\n", &small).0.is_err());
    assert!(decode_with(b"%2\r\n", &small).0.is_err());
}

#[test]
fn depth_limit() {
    let nested = |n: usize| {
        let mut v = b"*1\r\n".repeat(n);
        v.extend_from_slice(b":1\r\n");
        v
    };
    assert!(decode_all(&nested(128)).0.unwrap().is_some());
    assert!(fails(&nested(129)).contains("nested deeper than the limit of 128"));
    // Rejected before the rest arrives.
    assert!(fails(&b"*1\r\n".repeat(129)).contains("nested deeper"));
    let attrs = b"|0\r\n".repeat(200);
    assert!(fails(&attrs).contains("nested deeper"));
    let flat = Limits {
        max_depth: 0,
        ..Limits::default()
    };
    assert!(decode_with(b"*0\r\n", &flat).0.is_err());
    assert!(decode_with(b":1\r\n", &flat).0.unwrap().is_some());
}

#[test]
fn consecutive_values() {
    let mut buf = BytesMut::from(&b"+OK\r\n:1\r\n$-1\r\n+PART"[..]);
    let limits = Limits::default();
    let mut got = vec![];
    while let Some(v) = crate::resp::decode(&mut buf, &limits).unwrap() {
        got.push(v);
    }
    assert_eq!(
        got,
        vec![Value::SimpleString(b("OK")), Value::Int(1), Value::Nil]
    );
    assert_eq!(&buf[..], b"+PART");
}

#[test]
fn encoding() {
    let mut out = BytesMut::new();
    encode_command(&mut out, [&b"SET"[..], b"key", b""].into_iter());
    assert_eq!(&out[..], b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$0\r\n\r\n");

    let enc = |v: Value| {
        let mut out = BytesMut::new();
        encode_value(&mut out, &v);
        String::from_utf8(out.to_vec()).unwrap()
    };
    assert_eq!(enc(Value::Nil), "_\r\n");
    assert_eq!(enc(Value::Int(i64::MIN)), ":-9223372036854775808\r\n");
    assert_eq!(enc(Value::Double(f64::NAN)), ",nan\r\n");
    assert_eq!(enc(Value::Double(f64::NEG_INFINITY)), ",-inf\r\n");
    assert_eq!(enc(Value::Double(1e300)), ",1e300\r\n");
    assert_eq!(enc(Value::SimpleString(b("a\nb"))), "$3\r\na\nb\r\n");
    let e = |code: &str, message: &str| {
        Value::Error(ServerError {
            code: code.into(),
            message: message.into(),
        })
    };
    assert_eq!(enc(e("ERR", "bad")), "-ERR bad\r\n");
    assert_eq!(enc(e("ERR", "")), "-ERR\r\n");
    assert_eq!(enc(e("ERR", "two\nlines")), "!13\r\nERR two\nlines\r\n");
    assert_eq!(
        enc(Value::Verbatim {
            format: *b"txt",
            text: b("hi")
        }),
        "=6\r\ntxt:hi\r\n"
    );
}
