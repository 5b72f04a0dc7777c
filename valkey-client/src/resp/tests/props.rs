//! Property tests: encode/decode round trips, incremental feeding, garbage.

use crate::resp::{Limits, ServerError, Value, decode, encode_command, encode_value};
use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

/// Equality where NaN equals NaN, so doubles can round-trip in values.
fn same(a: &Value, b: &Value) -> bool {
    let all =
        |a: &[Value], b: &[Value]| a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b));
    let pairs = |a: &[(Value, Value)], b: &[(Value, Value)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((ak, av), (bk, bv))| same(ak, bk) && same(av, bv))
    };
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::Push(x), Value::Push(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => pairs(x, y),
        (
            Value::Attribute {
                attributes: xa,
                value: xv,
            },
            Value::Attribute {
                attributes: ya,
                value: yv,
            },
        ) => pairs(xa, ya) && same(xv, yv),
        _ => a == b,
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn leaf() -> impl Strategy<Value = Value> {
    let line = vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..16,
    );
    // A `-` line holds no CR/LF; messages with newlines become blob errors `!`.
    let message = prop_oneof!["[ -~]{0,20}", "[a-z \r\n]{0,10}"];
    prop_oneof![
        Just(Value::Nil),
        line.prop_map(|l| Value::SimpleString(l.into())),
        ("[A-Za-z]{1,8}", message)
            .prop_map(|(code, message)| Value::Error(ServerError { code, message })),
        any::<i64>().prop_map(Value::Int),
        bytes(24).prop_map(Value::BulkString),
        any::<f64>().prop_map(Value::Double),
        Just(Value::Double(f64::NAN)),
        any::<bool>().prop_map(Value::Boolean),
        "[+-]?[0-9]{1,40}".prop_map(|n| Value::BigNumber(n.into())),
        ("[a-z]{3}", bytes(16)).prop_map(|(f, text)| Value::Verbatim {
            format: f.as_bytes().try_into().expect("three ASCII letters"),
            text,
        }),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        let pairs = vec((inner.clone(), inner.clone()), 0..4);
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec(inner.clone(), 0..6).prop_map(Value::Set),
            vec(inner.clone(), 0..6).prop_map(Value::Push),
            pairs.clone().prop_map(Value::Map),
            (pairs, inner).prop_map(|(attributes, value)| Value::Attribute {
                attributes,
                value: Box::new(value),
            }),
        ]
    })
}

fn encode(v: &Value) -> BytesMut {
    let mut out = BytesMut::new();
    encode_value(&mut out, v);
    out
}

/// Byte soup biased towards RESP syntax, so the fuzzing reaches deep states.
fn resp_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(&b"\r\n"[..]),
        Just(&b"*"[..]),
        Just(&b"$"[..]),
        Just(&b"%"[..]),
        Just(&b"|"[..]),
        Just(&b"="[..]),
        Just(&b"!"[..]),
        Just(&b"-1"[..]),
        Just(&b"0"[..]),
        Just(&b"1"[..]),
        Just(&b"2"[..]),
        Just(&b"4"[..]),
        Just(&b"txt:"[..]),
        Just(&b"_\r\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\n"[..]),
        Just(&b","[..]),
        Just(&b"(+"[..]),
    ];
    vec(token, 0..40).prop_map(|ts| ts.concat())
}

/// Decoding `input` never panics and always leaves the buffer consistent.
fn check_garbage(input: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::from(input);
    loop {
        let before = buf.len();
        match decode(&mut buf, limits) {
            Ok(Some(v)) => {
                prop_assert!(buf.len() < before, "a value consumes bytes");
                // Whatever was accepted re-encodes to something that decodes the same.
                let mut again = encode(&v);
                let back = decode(&mut again, &Limits::default());
                prop_assert!(
                    matches!(&back, Ok(Some(w)) if same(&v, w)),
                    "{v:?} vs {back:?}"
                );
            }
            Ok(None) | Err(_) => {
                prop_assert_eq!(buf.len(), before, "None or an error consumes nothing");
                return Ok(());
            }
        }
    }
}

proptest! {
    #[test]
    fn round_trip(v in value()) {
        let mut buf = encode(&v);
        let got = decode(&mut buf, &Limits::default()).unwrap().unwrap();
        prop_assert!(same(&v, &got), "{v:?} decoded as {got:?}");
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn every_split_point(v in value()) {
        let full = encode(&v);
        let limits = Limits::default();
        // Fed one byte at a time: nothing until the last byte.
        let mut buf = BytesMut::with_capacity(full.len());
        for (i, &byte) in full.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            let got = decode(&mut buf, &limits).unwrap();
            if i + 1 < full.len() {
                prop_assert!(got.is_none(), "complete after {} of {} bytes", i + 1, full.len());
                prop_assert_eq!(buf.len(), i + 1);
            } else {
                prop_assert!(got.is_some_and(|g| same(&v, &g)));
                prop_assert!(buf.is_empty());
            }
        }
        // Split into two chunks at every position.
        for i in 0..full.len() {
            let mut buf = BytesMut::from(&full[..i]);
            prop_assert_eq!(decode(&mut buf, &limits), Ok(None));
            prop_assert_eq!(buf.len(), i);
            buf.extend_from_slice(&full[i..]);
            let got = decode(&mut buf, &limits).unwrap().unwrap();
            prop_assert!(same(&v, &got));
            prop_assert!(buf.is_empty());
        }
    }

    #[test]
    fn concatenated_values(vs in vec(value(), 0..6)) {
        let mut buf = BytesMut::new();
        for v in &vs {
            encode_value(&mut buf, v);
        }
        for v in &vs {
            let got = decode(&mut buf, &Limits::default()).unwrap().unwrap();
            prop_assert!(same(v, &got), "{v:?} decoded as {got:?}");
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decode(&mut buf, &Limits::default()), Ok(None));
    }

    #[test]
    fn command_decodes_as_bulk_array(args in vec(vec(any::<u8>(), 0..32), 0..8)) {
        let mut buf = BytesMut::new();
        encode_command(&mut buf, args.iter().map(Vec::as_slice));
        let want = Value::Array(args.iter().map(|a| Value::BulkString(Bytes::from(a.clone()))).collect());
        prop_assert_eq!(decode(&mut buf, &Limits::default()), Ok(Some(want)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(input in vec(any::<u8>(), 0..256)) {
        check_garbage(&input, &Limits::default())?;
    }

    #[test]
    fn resp_like_garbage_never_panics(input in resp_ish()) {
        check_garbage(&input, &Limits::default())?;
        check_garbage(&input, &Limits { max_bulk_len: 3, max_depth: 2, max_elements: 3, ..Limits::default() })?;
    }

    #[test]
    fn corrupted_encodings_never_panic(v in value(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&v).to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        check_garbage(&bytes, &Limits::default())?;
    }
}
