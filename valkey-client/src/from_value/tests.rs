//! Every `FromValue` impl, its error cases, RESP2 and RESP3 shapes alike.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::resp::ServerError;

fn bulk(s: &str) -> Value {
    Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn server_error(line: &str) -> Value {
    Value::Error(ServerError::from_line(line.as_bytes()))
}

/// `value` wrapped in a RESP3 attribute.
fn attr(value: Value) -> Value {
    Value::Attribute {
        attributes: vec![(bulk("key-popularity"), Value::Int(1))],
        value: Box::new(value),
    }
}

/// The message of a Data error, failing the test for any other outcome.
fn data_err<T: FromValue + std::fmt::Debug>(value: Value) -> String {
    let err = T::from_value(value).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Data, "{err}");
    err.to_string()
}

/// A flat RESP2 `HGETALL` reply and its RESP3 map.
fn hash_replies() -> [Value; 2] {
    [
        arr(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]),
        Value::Map(vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))]),
    ]
}

#[test]
fn scalars() {
    assert_eq!(i64::from_value(Value::Int(-3)).unwrap(), -3);
    assert_eq!(u16::from_value(bulk("7")).unwrap(), 7);
    assert_eq!(
        i128::from_value(Value::BigNumber(
            "-170141183460469231731687303715884105728".into()
        ))
        .unwrap(),
        i128::MIN
    );
    assert_eq!(u32::from_value(Value::Boolean(true)).unwrap(), 1);
    assert!(data_err::<u16>(Value::Int(-1)).contains("does not fit"));
    assert!(data_err::<i64>(bulk("12x")).contains("12x"));
    assert_eq!(Vec::<u8>::from_value(bulk("ab")).unwrap(), b"ab");
    assert_eq!(
        String::from_value(Value::SimpleString("OK".into())).unwrap(),
        "OK"
    );
    assert_eq!(String::from_value(Value::Int(5)).unwrap(), "5");
    assert!(data_err::<String>(Value::BulkString((&b"\xff"[..]).into())).contains("UTF-8"));
    assert_eq!(&*Box::<[u8]>::from_value(bulk("x")).unwrap(), b"x");
    assert_eq!(&*Arc::<[u8]>::from_value(bulk("y")).unwrap(), b"y");
    assert_eq!(&*Arc::<str>::from_value(bulk("z")).unwrap(), "z");
    assert_eq!(&*Box::<str>::from_value(bulk("w")).unwrap(), "w");
    assert_eq!(<[u8; 3]>::from_value(bulk("abc")).unwrap(), *b"abc");
    assert!(data_err::<[u8; 3]>(bulk("ab")).contains("2 bytes"));
    assert_eq!(Bytes::from_value(Value::Double(1.5)).unwrap(), "1.5");
    assert!(data_err::<Bytes>(Value::Boolean(true)).contains("boolean"));
    assert_eq!(Option::<i64>::from_value(Value::Nil).unwrap(), None);
    assert_eq!(Option::<i64>::from_value(Value::Int(2)).unwrap(), Some(2));
    <()>::from_value(Value::SimpleString("QUEUED".into())).unwrap();
    let err = <()>::from_value(server_error("ERR nope")).unwrap_err();
    assert_eq!(err.code(), Some("ERR"));
    let raw = attr(Value::Int(1));
    assert_eq!(
        Value::from_value(raw.clone()).unwrap(),
        raw,
        "Value keeps attributes"
    );
}

#[test]
fn floats() {
    assert_eq!(f64::from_value(Value::Double(2.5)).unwrap(), 2.5);
    assert_eq!(f64::from_value(Value::Int(3)).unwrap(), 3.0);
    assert_eq!(f64::from_value(bulk("-inf")).unwrap(), f64::NEG_INFINITY);
    assert_eq!(f64::from_value(bulk("inf")).unwrap(), f64::INFINITY);
    assert!(f64::from_value(bulk("nan")).unwrap().is_nan());
    assert_eq!(
        f64::from_value(Value::BigNumber("12345678901234567890".into())).unwrap(),
        12345678901234567890.0
    );
    assert!(data_err::<f64>(bulk("one")).contains("one"));
    assert!(data_err::<f64>(Value::Nil).contains("nil"));
    assert_eq!(f32::from_value(Value::Double(0.25)).unwrap(), 0.25);
    assert_eq!(f32::from_value(bulk("inf")).unwrap(), f32::INFINITY);
    assert!(data_err::<f32>(Value::Double(1e300)).contains("f32"));
}

#[test]
fn booleans() {
    assert!(bool::from_value(Value::SimpleString("OK".into())).unwrap());
    assert!(bool::from_value(bulk("1")).unwrap());
    assert!(!bool::from_value(bulk("0")).unwrap());
    assert!(bool::from_value(Value::Boolean(true)).unwrap());
    assert!(bool::from_value(Value::Int(2)).unwrap());
    assert!(!bool::from_value(Value::Nil).unwrap());
    assert!(data_err::<bool>(bulk("yes")).contains("yes"));
    assert!(data_err::<bool>(Value::Double(1.0)).contains("double"));
}

#[test]
fn attributes_are_looked_through_everywhere() {
    assert_eq!(i64::from_value(attr(Value::Int(4))).unwrap(), 4);
    assert_eq!(Option::<i64>::from_value(attr(Value::Nil)).unwrap(), None);
    let list = attr(arr(vec![attr(bulk("a")), bulk("b")]));
    assert_eq!(Vec::<String>::from_value(list).unwrap(), ["a", "b"]);
    let map = attr(Value::Map(vec![(attr(bulk("k")), attr(Value::Int(1)))]));
    assert_eq!(HashMap::<String, i64>::from_value(map).unwrap()["k"], 1);
    let nested = arr(vec![attr(arr(vec![bulk("m"), Value::Double(1.0)]))]);
    assert_eq!(
        Vec::<(String, f64)>::from_value(nested).unwrap(),
        [("m".to_string(), 1.0)]
    );
    let pair = attr(arr(vec![bulk("x"), Value::Int(1)]));
    assert_eq!(<(String, i64)>::from_value(pair).unwrap().1, 1);
    assert!(bool::from_value(attr(Value::Boolean(true))).unwrap());
}

#[test]
fn lists() {
    let list = arr(vec![bulk("a"), Value::Nil]);
    assert_eq!(
        Vec::<Option<String>>::from_value(list).unwrap(),
        vec![Some("a".to_string()), None]
    );
    assert_eq!(
        Vec::<i64>::from_value(Value::Nil).unwrap(),
        Vec::<i64>::new()
    );
    let set = Value::Set(vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(VecDeque::<i64>::from_value(set).unwrap(), [1, 2]);
    assert_eq!(
        <[i64; 2]>::from_value(arr(vec![Value::Int(1), Value::Int(2)])).unwrap(),
        [1, 2]
    );
    assert!(data_err::<[i64; 3]>(arr(vec![Value::Int(1)])).contains("array of 3"));
    assert!(data_err::<Vec<i64>>(Value::Int(1)).contains("integer reply into a list"));
    // An element of the wrong shape fails the whole list.
    assert!(data_err::<Vec<i64>>(arr(vec![Value::Int(1), bulk("x")])).contains("x"));
    // A map read as a flat list, as RESP2 sends it.
    for reply in hash_replies() {
        assert_eq!(
            Vec::<String>::from_value(reply).unwrap(),
            ["a", "1", "b", "2"]
        );
    }
}

#[test]
fn sets() {
    let reply = Value::Set(vec![bulk("x"), bulk("y"), bulk("x")]);
    let set = HashSet::<String>::from_value(reply.clone()).unwrap();
    assert_eq!(set.len(), 2);
    assert!(set.contains("y"));
    let ordered = BTreeSet::<String>::from_value(reply).unwrap();
    assert_eq!(ordered.into_iter().collect::<Vec<_>>(), ["x", "y"]);
    // RESP2 sends sets as arrays.
    let from_array = BTreeSet::<i64>::from_value(arr(vec![Value::Int(2), Value::Int(1)])).unwrap();
    assert_eq!(from_array.into_iter().collect::<Vec<_>>(), [1, 2]);
    type Fixed = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;
    let custom = HashSet::<i64, Fixed>::from_value(arr(vec![Value::Int(5)])).unwrap();
    assert!(custom.contains(&5));
    assert!(data_err::<HashSet<i64>>(bulk("s")).contains("set"));
}

#[test]
fn maps_from_resp2_and_resp3() {
    type Fixed = BuildHasherDefault<std::collections::hash_map::DefaultHasher>;
    for reply in hash_replies() {
        let map = HashMap::<String, i64>::from_value(reply.clone()).unwrap();
        assert_eq!((map["a"], map["b"]), (1, 2));
        let custom = HashMap::<String, String, Fixed>::from_value(reply.clone()).unwrap();
        assert_eq!(custom["b"], "2");
        let ordered = BTreeMap::<String, i64>::from_value(reply.clone()).unwrap();
        assert_eq!(
            ordered.into_iter().collect::<Vec<_>>(),
            [("a".to_string(), 1), ("b".to_string(), 2)]
        );
        let pairs = Vec::<(String, String)>::from_value(reply).unwrap();
        assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "2".into())]);
    }
    // An array of two-element arrays (RESP3 `ZRANGE ... WITHSCORES`).
    let nested = arr(vec![
        arr(vec![bulk("m1"), Value::Double(1.0)]),
        arr(vec![bulk("m2"), Value::Double(2.5)]),
    ]);
    let map = BTreeMap::<String, f64>::from_value(nested.clone()).unwrap();
    assert_eq!(map["m2"], 2.5);
    let pairs = Vec::<(String, f64)>::from_value(nested).unwrap();
    assert_eq!(pairs[1], ("m2".to_string(), 2.5));
    // The same reply in RESP2: flat, scores as strings.
    let flat = arr(vec![bulk("m1"), bulk("1"), bulk("m2"), bulk("2.5")]);
    assert_eq!(Vec::<(String, f64)>::from_value(flat).unwrap()[1].1, 2.5);
    // A map whose values are lists, flat (RESP2): keys are not arrays.
    let lists = arr(vec![bulk("k"), arr(vec![bulk("v1"), bulk("v2")])]);
    let m = HashMap::<String, Vec<String>>::from_value(lists).unwrap();
    assert_eq!(m["k"], ["v1", "v2"]);
    assert_eq!(
        HashMap::<String, i64>::from_value(Value::Nil)
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        HashMap::<String, i64>::from_value(arr(vec![]))
            .unwrap()
            .len(),
        0
    );
    // Errors: odd flat arrays, pairs of the wrong length, other shapes.
    let odd = arr(vec![bulk("a"), bulk("1"), bulk("b")]);
    assert!(data_err::<HashMap<String, String>>(odd.clone()).contains("odd"));
    assert!(data_err::<Vec<(String, String)>>(odd).contains("odd"));
    let triple = arr(vec![arr(vec![bulk("a"), bulk("b"), bulk("c")])]);
    assert!(data_err::<HashMap<String, String>>(triple.clone()).contains("3 elements"));
    assert!(data_err::<Vec<(String, String)>>(triple).contains("3 elements"));
    assert!(data_err::<BTreeMap<String, i64>>(Value::Int(1)).contains("integer reply into a map"));
    assert!(
        data_err::<HashMap<String, i64>>(Value::Map(vec![(bulk("k"), bulk("x"))])).contains("x")
    );
}

#[test]
fn tuples() {
    let reply = arr(vec![bulk("a"), Value::Int(2), Value::Nil]);
    let (a, b, c): (String, i64, Option<f64>) = FromValue::from_value(reply.clone()).unwrap();
    assert_eq!((a.as_str(), b, c), ("a", 2, None));
    assert!(data_err::<(String, i64)>(reply.clone()).contains("3 elements into a tuple of 2"));
    assert!(data_err::<(String, i64, i64, i64)>(reply).contains("tuple of 4"));
    assert!(data_err::<(i64,)>(Value::Int(1)).contains("integer reply into a tuple of 1"));
    assert_eq!(
        <(i64,)>::from_value(arr(vec![Value::Int(1)])).unwrap(),
        (1,)
    );
    let twelve = arr((1..=12).map(Value::Int).collect());
    let t: (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64) =
        FromValue::from_value(twelve).unwrap();
    assert_eq!((t.0, t.11), (1, 12));
    // A map of one entry is a pair (CONFIG GET in RESP3); of two, a 4-tuple.
    let config = Value::Map(vec![(bulk("maxmemory"), bulk("0"))]);
    assert_eq!(
        <(String, u64)>::from_value(config).unwrap(),
        ("maxmemory".to_string(), 0)
    );
    let [resp2, resp3] = hash_replies();
    let t4: (String, i64, String, i64) = FromValue::from_value(resp3).unwrap();
    assert_eq!(t4, ("a".into(), 1, "b".into(), 2));
    let t4: (String, i64, String, i64) = FromValue::from_value(resp2).unwrap();
    assert_eq!(t4.3, 2);
    // Nested tuples and lists of tuples.
    let nested = arr(vec![arr(vec![
        bulk("x"),
        arr(vec![Value::Int(1), Value::Int(2)]),
    ])]);
    let v: Vec<(String, Vec<i64>)> = FromValue::from_value(nested).unwrap();
    assert_eq!(v, [("x".to_string(), vec![1, 2])]);
    // An element's own error reply is the error.
    let with_error = arr(vec![Value::Int(1), server_error("WRONGTYPE bad")]);
    let err = <(i64, i64)>::from_value(with_error).unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Response, Some("WRONGTYPE"))
    );
}

#[test]
fn result_elements_keep_their_errors() {
    let exec = arr(vec![
        Value::Int(1),
        server_error("WRONGTYPE bad"),
        bulk("x"),
    ]);
    let results = Vec::<Result<i64>>::from_value(exec.clone()).unwrap();
    assert_eq!(results[0].as_ref().unwrap(), &1);
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::Response, Some("WRONGTYPE"))
    );
    assert_eq!(err.delivery(), crate::Delivery::Replied);
    assert_eq!(results[2].as_ref().unwrap_err().kind(), ErrorKind::Data);
    // Without `Result` elements the first error reply is the error.
    let err = Vec::<i64>::from_value(exec.clone()).unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    // `Result<Value>` elements too: the error reply is not a value.
    let raw = Vec::<Result<Value>>::from_value(exec).unwrap();
    assert!(raw[1].is_err());
    // Tuples with a `Result` element.
    let (ok, failed): (i64, Result<i64>) =
        FromValue::from_value(arr(vec![Value::Int(1), server_error("ERR x")])).unwrap();
    assert_eq!(ok, 1);
    assert_eq!(failed.unwrap_err().code(), Some("ERR"));
    // The list itself must still be a list.
    assert!(data_err::<Vec<Result<i64>>>(Value::Int(1)).contains("list"));
    // Pairs inside `Result`.
    let [_, resp3] = hash_replies();
    let pairs = Vec::<Result<(String, i64)>>::from_value(resp3).unwrap();
    assert_eq!(pairs[1].as_ref().unwrap().1, 2);
}

#[test]
fn pipeline_results() {
    let results = || {
        vec![
            Ok(Value::SimpleString("OK".into())),
            Err(Error::from_server(ServerError::from_line(b"ERR failed"))),
            Ok(Value::Int(3)),
        ]
    };
    // The first error is the error...
    assert_eq!(
        <((), i64, i64)>::from_results(results())
            .unwrap_err()
            .code(),
        Some("ERR")
    );
    assert_eq!(
        Vec::<Value>::from_results(results()).unwrap_err().code(),
        Some("ERR")
    );
    assert_eq!(
        <()>::from_results(results()).unwrap_err().code(),
        Some("ERR")
    );
    // ...unless the type keeps results.
    let ((), failed, n): ((), Result<i64>, i64) = FromValue::from_results(results()).unwrap();
    assert_eq!((failed.unwrap_err().code(), n), (Some("ERR"), 3));
    let all = Vec::<Result<Value>>::from_results(results()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[1].is_err());
    let deque = VecDeque::<Result<i64>>::from_results(results()).unwrap();
    assert_eq!(deque[1].as_ref().unwrap_err().code(), Some("ERR"));
    let array = <[Result<i64>; 3]>::from_results(results()).unwrap();
    // `OK` is not an integer: a conversion error kept in its place.
    assert_eq!(array[0].as_ref().unwrap_err().kind(), ErrorKind::Data);
    assert!(<[Result<i64>; 2]>::from_results(results()).is_err());
    assert!(data_err_results::<(i64, i64)>(results()).contains("3 replies into a tuple of 2"));
    // Non-server errors (a command left without a reply) keep their kind.
    let lost = vec![
        Ok(Value::Int(1)),
        Err(Error::new(ErrorKind::Connection, "lost").with_delivery(crate::Delivery::SentNoReply)),
    ];
    let (_, second): (i64, Result<i64>) = FromValue::from_results(lost.clone()).unwrap();
    assert_eq!(second.unwrap_err().delivery(), crate::Delivery::SentNoReply);
    assert_eq!(
        <(i64, i64)>::from_results(lost).unwrap_err().kind(),
        ErrorKind::Connection
    );
    // A map reads the pipeline's replies as a flat array.
    let map = HashMap::<String, i64>::from_results(vec![Ok(bulk("k")), Ok(Value::Int(1))]).unwrap();
    assert_eq!(map["k"], 1);
}

fn data_err_results<T: FromValue + std::fmt::Debug>(results: Vec<Result<Value>>) -> String {
    let err = T::from_results(results).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Data, "{err}");
    err.to_string()
}

#[test]
fn resp3_types() {
    let v = Verbatim::from_value(attr(Value::Verbatim {
        format: *b"mkd",
        text: "# Title".into(),
    }))
    .unwrap();
    assert_eq!(
        v,
        Verbatim {
            format: "mkd".into(),
            text: "# Title".into()
        }
    );
    let plain = Verbatim::from_value(bulk("x")).unwrap();
    assert_eq!(plain.format, "txt");
    assert!(data_err::<Verbatim>(Value::Int(1)).contains("verbatim"));
    assert!(
        data_err::<Verbatim>(Value::Verbatim {
            format: *b"txt",
            text: (&b"\xff"[..]).into()
        })
        .contains("UTF-8")
    );
    // A verbatim string reads as a String (its text) too.
    assert_eq!(
        String::from_value(Value::Verbatim {
            format: *b"txt",
            text: "info".into()
        })
        .unwrap(),
        "info"
    );

    let big = BigNumber::from_value(Value::BigNumber(
        "3492890328409238509324850943850943825024385".into(),
    ))
    .unwrap();
    assert_eq!(big.as_str(), "3492890328409238509324850943850943825024385");
    assert_eq!(big.to_i128(), None);
    assert!(big.to_f64() > 3.4e42);
    assert_eq!(big.to_string(), big.as_str());
    assert_eq!(
        BigNumber::from_value(Value::Int(-5)).unwrap().to_i128(),
        Some(-5)
    );
    assert_eq!(
        BigNumber::from_value(bulk("+12")).unwrap().to_i128(),
        Some(12)
    );
    for bad in ["", "-", "1.5", "12a", "--1"] {
        assert!(
            data_err::<BigNumber>(bulk(bad)).contains("big number"),
            "{bad}"
        );
    }
    assert!(data_err::<BigNumber>(Value::Double(1.0)).contains("double"));
    let cmd = crate::Cmd::new("SET")
        .arg("k")
        .arg(BigNumber::parse("-42").unwrap());
    assert_eq!(cmd.arg_at(2), Some(&b"-42"[..]));
    assert!(BigNumber::parse("x").is_none());
    assert!(data_err::<i64>(Value::BigNumber("99999999999999999999".into())).contains("i64"));
}

#[test]
fn every_shape_is_named_in_mismatches() {
    let replies = [
        (Value::Nil, "nil"),
        (Value::SimpleString("s".into()), "simple string"),
        (Value::Int(1), "integer"),
        (bulk("b"), "bulk string"),
        (arr(vec![]), "array"),
        (Value::Map(vec![]), "map"),
        (Value::Set(vec![]), "set"),
        (Value::Double(1.0), "double"),
        (Value::Boolean(true), "boolean"),
        (Value::BigNumber("1".into()), "big number"),
        (
            Value::Verbatim {
                format: *b"txt",
                text: "t".into(),
            },
            "verbatim string",
        ),
        (Value::Push(vec![]), "push"),
    ];
    for (reply, name) in replies {
        let text = mismatch(reply, "a thing").to_string();
        assert!(text.contains(name) && text.contains("a thing"), "{text}");
    }
    // An attribute is named by what it annotates.
    assert!(
        mismatch(attr(Value::Int(1)), "x")
            .to_string()
            .contains("integer")
    );
    // An error reply stays the server's error.
    let err = mismatch(server_error("NOPERM no"), "x");
    assert_eq!(
        (err.kind(), err.code()),
        (ErrorKind::NoPermission, Some("NOPERM"))
    );
}

#[test]
fn a_result_around_a_pipeline_keeps_the_first_error() {
    let results = vec![
        Ok(Value::Int(1)),
        Err(Error::new(ErrorKind::Timeout, "late")),
    ];
    let kept = Result::<Vec<i64>>::from_results(results).unwrap();
    assert_eq!(kept.unwrap_err().kind(), ErrorKind::Timeout);
    let fine = Result::<Vec<i64>>::from_results(vec![Ok(Value::Int(1))]).unwrap();
    assert_eq!(fine.unwrap(), [1]);
}
