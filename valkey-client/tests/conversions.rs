//! Arguments (`ToArgs`) and reply conversions (`FromValue`) against a real
//! valkey-server, in RESP2 and RESP3: the same Rust types must come out of
//! both protocols' shapes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use valkey_client::{
    BigNumber, Cmd, ErrorKind, FromValue, Pipeline, Protocol, Result, Valkey, Value, Verbatim,
};
use valkey_testkit::{Server, ServerConfig};

/// A server that answers `DEBUG PROTOCOL ...` (every RESP3 type on demand).
async fn server() -> Server {
    Server::start(ServerConfig::new().config("enable-debug-command", "yes"))
        .await
        .expect("start a valkey-server")
}

/// A client of each protocol, after checking it speaks it.
async fn clients(server: &Server) -> Vec<(Protocol, Valkey)> {
    let mut out = Vec::new();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let client = Valkey::builder()
            .host("127.0.0.1")
            .port(server.port())
            .protocol(protocol)
            .build()
            .await
            .expect("connect");
        let info: String = client
            .request(&Cmd::new("CLIENT").arg("INFO"))
            .await
            .unwrap();
        let resp = if protocol == Protocol::Resp2 {
            "resp=2"
        } else {
            "resp=3"
        };
        assert!(info.contains(resp), "{protocol:?}: {info}");
        out.push((protocol, client));
    }
    out
}

/// A key for this protocol, so the two clients do not share data.
fn key(protocol: Protocol, name: &str) -> String {
    format!("{protocol:?}:{name}")
}

#[tokio::test]
async fn hashes_and_sets_into_collections() {
    let server = server().await;
    for (protocol, client) in clients(&server).await {
        let h = key(protocol, "h");
        let fields = BTreeMap::from([("a", 1), ("b", 2), ("c", 3)]);
        let added: i64 = client
            .request(&Cmd::new("HSET").arg(&h).arg(&fields))
            .await
            .unwrap();
        assert_eq!(added, 3);
        let hgetall = Cmd::new("HGETALL").arg(&h);

        let map: HashMap<String, i64> = client.request(&hgetall).await.unwrap();
        assert_eq!(map.len(), 3, "{protocol:?}");
        assert_eq!((map["a"], map["c"]), (1, 3));
        let ordered: BTreeMap<String, String> = client.request(&hgetall).await.unwrap();
        assert_eq!(
            ordered.into_iter().collect::<Vec<_>>(),
            [("a", "1"), ("b", "2"), ("c", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let mut pairs: Vec<(String, String)> = client.request(&hgetall).await.unwrap();
        pairs.sort();
        assert_eq!(pairs[1], ("b".to_string(), "2".to_string()), "{protocol:?}");
        assert_eq!(pairs.len(), 3);
        // Without pairs, a flat list in both protocols.
        let flat: Vec<String> = client.request(&hgetall).await.unwrap();
        assert_eq!(flat.len(), 6, "{protocol:?}");
        // A mixed tuple from HMGET: a number, a missing field, a string.
        let (a, missing, c): (i64, Option<String>, String) = client
            .request(&Cmd::new("HMGET").arg(&h).arg(("a", "nope", "c")))
            .await
            .unwrap();
        assert_eq!((a, missing, c.as_str()), (1, None, "3"));

        let s = key(protocol, "s");
        let added: i64 = client
            .request(&Cmd::new("SADD").arg(&s).arg(["x", "y", "z", "x"]))
            .await
            .unwrap();
        assert_eq!(added, 3);
        let members: HashSet<String> = client.request(&Cmd::new("SMEMBERS").arg(&s)).await.unwrap();
        assert_eq!(members, HashSet::from(["x", "y", "z"].map(String::from)));
        let ordered: BTreeSet<String> =
            client.request(&Cmd::new("SMEMBERS").arg(&s)).await.unwrap();
        assert_eq!(ordered.iter().next().map(String::as_str), Some("x"));
        let raw: Value = client.request(&Cmd::new("SMEMBERS").arg(&s)).await.unwrap();
        match protocol {
            Protocol::Resp3 => assert!(matches!(raw, Value::Set(_)), "{raw:?}"),
            _ => assert!(matches!(raw, Value::Array(_)), "{raw:?}"),
        }
        // A missing key is an empty collection.
        let empty: HashMap<String, String> = client
            .request(&Cmd::new("HGETALL").arg(key(protocol, "none")))
            .await
            .unwrap();
        assert!(empty.is_empty());
        // A shape mismatch is a Data error naming both shapes.
        let err = client
            .request::<HashMap<String, String>>(&Cmd::new("SCARD").arg(&s))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data);
        assert!(
            err.to_string().contains("integer reply into a map"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn sorted_sets_scores_and_doubles() {
    let server = server().await;
    for (protocol, client) in clients(&server).await {
        let z = key(protocol, "z");
        let added: i64 = client
            .request(
                &Cmd::new("ZADD")
                    .arg(&z)
                    .arg([(1.5, "a"), (2.0, "b"), (-0.25, "c")]),
            )
            .await
            .unwrap();
        assert_eq!(added, 3);
        let withscores = Cmd::new("ZRANGE").arg(&z).arg((0, -1, "WITHSCORES"));
        let scored: Vec<(String, f64)> = client.request(&withscores).await.unwrap();
        assert_eq!(
            scored,
            [("c", -0.25), ("a", 1.5), ("b", 2.0)].map(|(m, s)| (m.to_string(), s)),
            "{protocol:?}"
        );
        let by_member: BTreeMap<String, f64> = client.request(&withscores).await.unwrap();
        assert_eq!(by_member["a"], 1.5);

        let zscore = Cmd::new("ZSCORE").arg(&z).arg("a");
        let raw: Value = client.request(&zscore).await.unwrap();
        match protocol {
            Protocol::Resp3 => assert_eq!(raw, Value::Double(1.5)),
            _ => assert!(matches!(raw, Value::BulkString(_)), "{raw:?}"),
        }
        let wide: f64 = client.request(&zscore).await.unwrap();
        let narrow: f32 = client.request(&zscore).await.unwrap();
        assert_eq!((wide, narrow), (1.5, 1.5f32));
        let missing: Option<f64> = client
            .request(&Cmd::new("ZSCORE").arg(&z).arg("nobody"))
            .await
            .unwrap();
        assert_eq!(missing, None);
        // A pair from ZPOPMIN: [member, score] in both protocols.
        let (member, score): (String, f64) =
            client.request(&Cmd::new("ZPOPMIN").arg(&z)).await.unwrap();
        assert_eq!((member.as_str(), score), ("c", -0.25));
        // Infinite scores in both directions.
        let _: i64 = client
            .request(&Cmd::new("ZADD").arg(&z).arg((f64::INFINITY, "top")))
            .await
            .unwrap();
        let top: f64 = client
            .request(&Cmd::new("ZSCORE").arg(&z).arg("top"))
            .await
            .unwrap();
        assert_eq!(top, f64::INFINITY);
    }
}

#[tokio::test]
async fn pipelines_into_tuples_and_results() {
    let server = server().await;
    for (protocol, client) in clients(&server).await {
        let a = key(protocol, "a");
        let mut pipe = Pipeline::new();
        pipe.cmd("SET").arg(&a).arg(1);
        pipe.cmd("INCR").arg(&a);
        pipe.cmd("GET").arg(&a);
        pipe.cmd("GET").arg(key(protocol, "missing"));
        pipe.cmd("MGET").arg([&a, &a]);
        let ((), n, text, missing, both): ((), i64, String, Option<String>, (i64, i64)) =
            client.pipeline_into(&mut pipe).await.unwrap();
        assert_eq!((n, text.as_str(), missing), (2, "2", None));
        assert_eq!(both, (2, 2));

        // A failing command is the error, unless the type keeps results.
        let mut pipe = Pipeline::new();
        pipe.cmd("SET").arg(&a).arg("text");
        pipe.cmd("INCR").arg(&a);
        pipe.cmd("GET").arg(&a);
        let err = client
            .pipeline_into::<((), i64, String)>(&mut pipe)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("ERR"), "{err}");
        let ((), incr, get): ((), Result<i64>, String) =
            client.pipeline_into(&mut pipe).await.unwrap();
        assert_eq!(incr.unwrap_err().kind(), ErrorKind::Response);
        assert_eq!(get, "text");
        let all: Vec<Result<Value>> = client.pipeline_into(&mut pipe).await.unwrap();
        assert_eq!(all.len(), 3);
        assert!(all[1].is_err());
        // The number of replies must match the tuple.
        let err = client
            .pipeline_into::<((), Result<i64>)>(&mut pipe)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data);
    }
}

#[tokio::test]
async fn transaction_with_a_failing_element() {
    let server = server().await;
    for (protocol, client) in clients(&server).await {
        let n = key(protocol, "n");
        let build = || {
            let mut tx = Pipeline::new();
            tx.cmd("MULTI");
            tx.cmd("INCR").arg(&n);
            tx.cmd("HSET").arg(&n).arg(("f", 1)); // WRONGTYPE when EXEC runs it
            tx.cmd("INCR").arg(&n);
            tx.cmd("EXEC");
            tx
        };
        let ((), (), (), (), exec): ((), (), (), (), Vec<Result<i64>>) =
            client.pipeline_into(&mut build()).await.unwrap();
        assert_eq!(exec.len(), 3, "{protocol:?}");
        assert_eq!(exec[0].as_ref().ok(), Some(&1));
        assert_eq!(exec[1].as_ref().unwrap_err().code(), Some("WRONGTYPE"));
        assert_eq!(exec[2].as_ref().ok(), Some(&2));

        // The same from `pipeline`, converting EXEC's reply alone.
        let mut results = client.pipeline(&mut build()).await.unwrap();
        let exec_reply = results.pop().unwrap().unwrap();
        let exec = Vec::<Result<i64>>::from_value(exec_reply.clone()).unwrap();
        assert_eq!(exec[2].as_ref().ok(), Some(&4));
        // Without `Result` elements, the failed element is the error.
        let err = Vec::<i64>::from_value(exec_reply).unwrap_err();
        assert_eq!(err.code(), Some("WRONGTYPE"));
    }
}

#[tokio::test]
async fn resp3_types_and_their_resp2_forms() {
    let server = server().await;
    for (protocol, client) in clients(&server).await {
        // INFO and CLIENT INFO: verbatim strings in RESP3, bulk in RESP2.
        let raw: Value = client
            .request(&Cmd::new("INFO").arg("server"))
            .await
            .unwrap();
        match protocol {
            Protocol::Resp3 => assert!(matches!(raw, Value::Verbatim { .. }), "{raw:?}"),
            _ => assert!(matches!(raw, Value::BulkString(_)), "{raw:?}"),
        }
        let info: String = client
            .request(&Cmd::new("INFO").arg("server"))
            .await
            .unwrap();
        assert!(info.contains("valkey_version:"), "{info}");
        let verbatim: Verbatim = client
            .request(&Cmd::new("CLIENT").arg("INFO"))
            .await
            .unwrap();
        assert_eq!(verbatim.format, "txt");
        assert!(verbatim.text.starts_with("id="), "{}", verbatim.text);

        // DEBUG PROTOCOL sends each RESP3 type (RESP2 gets its fallback).
        let debug = |kind: &str| Cmd::new("DEBUG").arg("PROTOCOL").arg(kind.to_string());
        let big: BigNumber = client.request(&debug("bignum")).await.unwrap();
        assert_eq!(big.as_str(), "1234567999999999999999999999999999999");
        let as_i128: i128 = client.request(&debug("bignum")).await.unwrap();
        assert_eq!(as_i128, 1234567999999999999999999999999999999);
        let as_f64: f64 = client.request(&debug("bignum")).await.unwrap();
        assert!((as_f64 - 1.234568e36).abs() < 1e31, "{as_f64}");
        let d: f64 = client.request(&debug("double")).await.unwrap();
        // The server's fixed test value (not pi).
        #[allow(clippy::approx_constant)]
        let expected = 3.141;
        assert_eq!(d, expected);
        let t: bool = client.request(&debug("true")).await.unwrap();
        let f: bool = client.request(&debug("false")).await.unwrap();
        assert_eq!((t, f), (true, false), "{protocol:?}");
        let text: String = client.request(&debug("verbatim")).await.unwrap();
        assert_eq!(text, "This is a verbatim\nstring");
        let map: HashMap<i64, bool> = client.request(&debug("map")).await.unwrap();
        assert_eq!((map.len(), map[&0], map[&1]), (3, false, true));
        let pairs: Vec<(i64, bool)> = client.request(&debug("map")).await.unwrap();
        assert_eq!(pairs[1], (1, true));
        let set: BTreeSet<i64> = client.request(&debug("set")).await.unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
        // An attribute annotates a reply; conversions look through it.
        let raw: Value = client.request(&debug("attrib")).await.unwrap();
        if protocol == Protocol::Resp3 {
            assert!(matches!(raw, Value::Attribute { .. }), "{raw:?}");
        }
        let raw: Value = client.request(&debug("bignum")).await.unwrap();
        if protocol == Protocol::Resp3 {
            assert!(matches!(raw, Value::BigNumber(_)), "{raw:?}");
        }
        let attributed: String = client.request(&debug("attrib")).await.unwrap();
        assert_eq!(attributed, "Some real reply following the attribute");
        let none: Option<String> = client.request(&debug("null")).await.unwrap();
        assert_eq!(none, None);
    }
}

#[tokio::test]
async fn mixed_tuples() {
    let server = server().await;
    for (protocol, client) in clients(&server).await {
        // CONFIG GET: a flat array in RESP2, a map in RESP3; one pair either way.
        let (name, value): (String, u64) = client
            .request(&Cmd::new("CONFIG").arg(("GET", "maxmemory")))
            .await
            .unwrap();
        assert_eq!((name.as_str(), value), ("maxmemory", 0), "{protocol:?}");

        let k = key(protocol, "k");
        let list = key(protocol, "list");
        let _: () = client
            .request(&Cmd::new("MSET").arg([(&k, "v"), (&list, "ignored")]))
            .await
            .unwrap();
        let _: i64 = client.request(&Cmd::new("DEL").arg(&list)).await.unwrap();
        let _: i64 = client
            .request(&Cmd::new("RPUSH").arg(&list).arg(vec![10, 20, 30]))
            .await
            .unwrap();
        let three: [u32; 3] = client
            .request(&Cmd::new("LRANGE").arg(&list).arg((0, -1)))
            .await
            .unwrap();
        assert_eq!(three, [10, 20, 30]);
        let err = client
            .request::<[u32; 2]>(&Cmd::new("LRANGE").arg(&list).arg((0, -1)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Data);
        let mut pipe = Pipeline::new();
        pipe.cmd("GET").arg(&k);
        pipe.cmd("LRANGE").arg(&list).arg((0, 1));
        pipe.cmd("EXISTS").arg(&k);
        pipe.cmd("TTL").arg(&k);
        let (v, first_two, exists, ttl): (Vec<u8>, (i64, String), bool, i64) =
            client.pipeline_into(&mut pipe).await.unwrap();
        assert_eq!(v, b"v");
        assert_eq!(first_two, (10, "20".to_string()));
        assert!(exists);
        assert_eq!(ttl, -1);
        // A bytes value is one argument, read back as the same bytes.
        let bytes = key(protocol, "bytes");
        let _: () = client
            .request(&Cmd::new("SET").arg(&bytes).arg(vec![0u8, 255, 13, 10]))
            .await
            .unwrap();
        let back: [u8; 4] = client.request(&Cmd::new("GET").arg(&bytes)).await.unwrap();
        assert_eq!(back, [0, 255, 13, 10]);
    }
}

/// With the `serde_json` feature: `Json<T>` both ways, and replies as
/// `serde_json::Value`.
#[cfg(feature = "serde_json")]
#[tokio::test]
async fn json_values() {
    use serde_json::json;
    use valkey_client::{Commands, Json};

    let server = server().await;
    for (protocol, client) in clients(&server).await {
        let doc = key(protocol, "doc");
        let profile = BTreeMap::from([("name", json!("Ada")), ("langs", json!(["en", "fr"]))]);
        client.set(&doc, Json(&profile)).await.unwrap();
        let stored: String = client.get(&doc).await.unwrap();
        assert_eq!(stored, r#"{"langs":["en","fr"],"name":"Ada"}"#);
        let Json(back): Json<BTreeMap<String, serde_json::Value>> = client.get(&doc).await.unwrap();
        assert_eq!(back["langs"], json!(["en", "fr"]));
        let value: serde_json::Value = client.get(&doc).await.unwrap();
        assert_eq!(value["name"], "Ada");
        let missing: Option<Json<Vec<i64>>> = client.get(key(protocol, "none")).await.unwrap();
        assert_eq!(missing, None);
        // A structured reply is mapped by its shape: a RESP3 map is an
        // object, RESP2's flat array an array.
        let h = key(protocol, "jh");
        let _: i64 = client
            .request(&Cmd::new("HSET").arg(&h).arg(("f", "v")))
            .await
            .unwrap();
        let hash: serde_json::Value = client.request(&Cmd::new("HGETALL").arg(&h)).await.unwrap();
        match protocol {
            Protocol::Resp3 => assert_eq!(hash, json!({"f": "v"})),
            _ => assert_eq!(hash, json!(["f", "v"])),
        }
        let score: serde_json::Value = client
            .request(&Cmd::new("INCRBYFLOAT").arg(key(protocol, "x")).arg(1.5))
            .await
            .unwrap();
        // INCRBYFLOAT replies with a bulk string, parsed as JSON text.
        assert_eq!(score, json!(1.5));
    }
}
