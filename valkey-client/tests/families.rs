//! The typed command methods (`Commands`) against a real valkey-server, one
//! test per command family, each run in RESP2 and in RESP3: the arguments
//! each method writes must be what the server parses, and the replies must
//! convert into the types a caller would name, the same in both protocols.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use valkey_client::commands::*;
use valkey_client::{Commands, FromValue, Pipeline, Protocol, Result, Transaction, Valkey, Value};
use valkey_testkit::{Server, ServerConfig};

/// A key of this protocol's run, so the two runs do not share data.
fn key(p: Protocol, name: &str) -> String {
    format!("{p:?}:{name}")
}

/// 2 or 3, for names that must differ between the runs (functions, users).
fn n(p: Protocol) -> u8 {
    if p == Protocol::Resp2 { 2 } else { 3 }
}

/// Whether two floats agree to `eps`.
fn near(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() <= eps
}

/// A client of `protocol`, named so `CLIENT GETNAME` has something to read.
async fn client(server: &Server, protocol: Protocol) -> Valkey {
    Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .protocol(protocol)
        .client_name(format!("families-{}", n(protocol)))
        .response_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .expect("connect")
}

/// One test: a server, then the family's body once per protocol, each on
/// its own client. A failure names the protocol.
macro_rules! family {
    ($(#[$doc:meta])* $test:ident => $body:ident) => {
        $(#[$doc])*
        #[tokio::test]
        async fn $test() {
            let server = Server::start(ServerConfig::new()).await.expect("start valkey-server");
            for protocol in [Protocol::Resp2, Protocol::Resp3] {
                eprintln!("-- {protocol:?}");
                let client = client(&server, protocol).await;
                if let Err(e) = $body(protocol, &client).await {
                    panic!("{protocol:?}: {e}");
                }
            }
        }
    };
}

family!(
    /// SET and its options, GETEX, GETDEL, APPEND, INCRBYFLOAT, MSET/MGET,
    /// SETRANGE/GETRANGE, LCS, DELIFEQ.
    strings => strings_family
);

async fn strings_family(p: Protocol, c: &Valkey) -> Result<()> {
    let k = key(p, "str");
    let missing = key(p, "str:missing");
    c.set(&k, "v1").await?;
    // NX on a present key and XX on a missing one: not set, a nil reply.
    let r: Option<String> = c.set_with(&k, "x", SetOptions::new().nx()).await?;
    assert_eq!(r, None);
    let r: Option<String> = c.set_with(&missing, "x", SetOptions::new().xx()).await?;
    assert_eq!(r, None);
    assert_eq!(c.exists(&missing).await?, 0);
    let r: Option<String> = c.set_with(&k, "x", SetOptions::new().xx()).await?;
    assert_eq!(r.as_deref(), Some("OK"));
    // GET gives the old value; EX sets a TTL.
    let old: Option<String> = c
        .set_with(&k, "v2", SetOptions::new().get().ex(100))
        .await?;
    assert_eq!(old.as_deref(), Some("x"));
    let ttl = c.ttl(&k).await?;
    assert!((1..=100).contains(&ttl), "ttl {ttl}");
    // KEEPTTL keeps it; a plain SET clears it.
    let () = c.set_with(&k, "v3", SetOptions::new().keepttl()).await?;
    assert!(c.ttl(&k).await? > 0);
    // IFEQ: set only when the current value matches.
    let r: Option<String> = c.set_with(&k, "v4", SetOptions::new().ifeq("nope")).await?;
    assert_eq!(r, None);
    let r: Option<String> = c.set_with(&k, "v4", SetOptions::new().ifeq("v3")).await?;
    assert_eq!(r.as_deref(), Some("OK"));
    assert_eq!(c.get::<Option<String>>(&k).await?.as_deref(), Some("v4"));
    assert_eq!(
        c.ttl(&k).await?,
        -1,
        "SET IFEQ without KEEPTTL clears the TTL"
    );

    // GETEX: set and clear a TTL while reading.
    let v: Option<String> = c.getex_with(&k, GetexOptions::new().ex(30)).await?;
    assert_eq!(v.as_deref(), Some("v4"));
    assert!((1..=30).contains(&c.ttl(&k).await?));
    let v: Option<String> = c.getex_with(&k, GetexOptions::new().persist()).await?;
    assert_eq!(v.as_deref(), Some("v4"));
    assert_eq!(c.ttl(&k).await?, -1);
    assert_eq!(c.getex::<Option<String>>(&missing).await?, None);

    // GETDEL
    assert_eq!(c.getdel::<Option<String>>(&k).await?.as_deref(), Some("v4"));
    assert_eq!(c.exists(&k).await?, 0);
    assert_eq!(c.getdel::<Option<String>>(&k).await?, None);

    // APPEND, STRLEN, SETRANGE, GETRANGE
    let a = key(p, "str:append");
    assert_eq!(c.append(&a, "Hello").await?, 5);
    assert_eq!(c.append(&a, " World").await?, 11);
    assert_eq!(c.strlen(&a).await?, 11);
    assert_eq!(c.setrange(&a, 6, "Valkey").await?, 12);
    assert_eq!(c.getrange::<String>(&a, 6, -1).await?, "Valkey");
    assert_eq!(c.get::<String>(&a).await?, "Hello Valkey");

    // Counters, integer and float.
    let f = key(p, "str:float");
    c.set(&f, "10.5").await?;
    let x = c.incrbyfloat(&f, 0.1).await?;
    assert!(near(x, 10.6, 1e-9), "{x}");
    let x = c.incrbyfloat(&f, -5.0).await?;
    assert!(near(x, 5.6, 1e-9), "{x}");
    let i = key(p, "str:int");
    assert_eq!(c.incr(&i).await?, 1);
    assert_eq!(c.incrby(&i, 41).await?, 42);
    assert_eq!(c.decrby(&i, 2).await?, 40);
    assert_eq!(c.decr(&i).await?, 39);

    // MSET / MGET / MSETNX
    let (m1, m2) = (key(p, "str:m1"), key(p, "str:m2"));
    c.mset([(&m1, "1"), (&m2, "2")]).await?;
    let got: Vec<Option<String>> = c.mget([&m1, &missing, &m2]).await?;
    assert_eq!(got, [Some("1".to_string()), None, Some("2".to_string())]);
    let (one, none, two): (i64, Option<i64>, i64) = c.mget((&m1, &missing, &m2)).await?;
    assert_eq!((one, none, two), (1, None, 2));
    assert_eq!(c.msetnx([(&m1, "9"), (&missing, "9")]).await?, 0);
    assert_eq!(c.exists(&missing).await?, 0);

    // LCS
    let (l1, l2) = (key(p, "str:lcs1"), key(p, "str:lcs2"));
    c.mset([(&l1, "ohmytext"), (&l2, "mynewtext")]).await?;
    assert_eq!(c.lcs::<String>(&l1, &l2).await?, "mytext");
    assert_eq!(
        c.lcs_with::<i64>(&l1, &l2, LcsOptions::new().len()).await?,
        6
    );

    // DELIFEQ (Valkey 9): delete only when the value matches.
    assert_eq!(c.delifeq(&m1, "nope").await?, 0);
    assert_eq!(c.delifeq(&m1, "1").await?, 1);
    assert_eq!(c.exists(&m1).await?, 0);
    Ok(())
}

family!(
    /// EXPIRE and its conditions, TTL, PERSIST, RENAME, COPY, TYPE, EXISTS,
    /// UNLINK, OBJECT ENCODING.
    keys_and_expiry => keys_family
);

async fn keys_family(p: Protocol, c: &Valkey) -> Result<()> {
    let k = key(p, "key");
    let missing = key(p, "key:missing");
    c.set(&k, "12345").await?;
    assert_eq!(c.ttl(&k).await?, -1);
    assert_eq!(c.ttl(&missing).await?, -2);
    assert_eq!(c.expire(&k, 100).await?, 1);
    // NX: only without a TTL; GT: only a later one.
    assert_eq!(c.expire_with(&k, 50, ExpireOptions::new().nx()).await?, 0);
    assert_eq!(c.expire_with(&k, 200, ExpireOptions::new().gt()).await?, 1);
    assert_eq!(c.expire_with(&k, 10, ExpireOptions::new().gt()).await?, 0);
    assert_eq!(c.expire_with(&k, 150, ExpireOptions::new().lt()).await?, 1);
    let ttl = c.ttl(&k).await?;
    assert!((101..=150).contains(&ttl), "ttl {ttl}");
    let pttl = c.pttl(&k).await?;
    assert!((100_000..=150_000).contains(&pttl), "pttl {pttl}");
    let at = c.expiretime(&k).await?;
    assert!(at > 1_600_000_000, "expiretime {at}");
    assert_eq!(c.expire(&missing, 10).await?, 0);
    assert_eq!(c.persist(&k).await?, 1);
    assert_eq!(c.persist(&k).await?, 0);
    assert_eq!(c.ttl(&k).await?, -1);

    // OBJECT ENCODING by value; nil for a missing key.
    assert_eq!(c.object_encoding::<String>(&k).await?, "int");
    let s = key(p, "key:embstr");
    c.set(&s, "hello").await?;
    assert_eq!(c.object_encoding::<String>(&s).await?, "embstr");
    let l = key(p, "key:list");
    c.rpush(&l, ["a", "b"]).await?;
    assert_eq!(c.object_encoding::<String>(&l).await?, "listpack");
    assert_eq!(c.object_encoding::<Option<String>>(&missing).await?, None);

    // RENAME, EXISTS (counts repeats), COPY.
    let k2 = key(p, "key:renamed");
    c.rename(&k, &k2).await?;
    assert_eq!(c.exists([&k, &k2]).await?, 1);
    assert_eq!(c.exists([&k2, &k2]).await?, 2);
    assert_eq!(c.renamenx(&k2, &s).await?, 0);
    let k3 = key(p, "key:copy");
    assert_eq!(c.copy(&k2, &k3).await?, 1);
    assert_eq!(c.copy(&k2, &k3).await?, 0, "no REPLACE, destination exists");
    c.set(&k3, "other").await?;
    assert_eq!(
        c.copy_with(&k2, &k3, CopyOptions::new().replace()).await?,
        1
    );
    assert_eq!(c.get::<String>(&k3).await?, "12345");

    // TYPE
    assert_eq!(c.key_type(&k2).await?, "string");
    assert_eq!(c.key_type(&l).await?, "list");
    assert_eq!(c.key_type(&missing).await?, "none");

    // TOUCH, UNLINK, DEL
    assert_eq!(c.touch([&k2, &k3, &missing]).await?, 2);
    assert_eq!(c.unlink([&k2, &k3, &missing]).await?, 2);
    assert_eq!(c.exists([&k2, &k3]).await?, 0);
    assert_eq!(c.del([&s, &l]).await?, 2);
    Ok(())
}

family!(
    /// HSET pairs, HGETALL into maps, HINCRBY, field expiry (HSETEX, HGETEX,
    /// HEXPIRE, HTTL, HPERSIST), HRANDFIELD.
    hashes => hashes_family
);

async fn hashes_family(p: Protocol, c: &Valkey) -> Result<()> {
    let h = key(p, "hash");
    let added: i64 = c.hset(&h, [("f1", "v1"), ("f2", "v2"), ("n", "5")]).await?;
    assert_eq!(added, 3);
    let added: i64 = c.hset(&h, ("f1", "v1")).await?;
    assert_eq!(added, 0);
    let map: HashMap<String, String> = c.hgetall(&h).await?;
    assert_eq!(map.len(), 3);
    assert_eq!((map["f1"].as_str(), map["n"].as_str()), ("v1", "5"));
    let ordered: BTreeMap<String, String> = c.hgetall(&h).await?;
    assert_eq!(ordered.keys().collect::<Vec<_>>(), ["f1", "f2", "n"]);
    assert_eq!(c.hincrby(&h, "n", 10).await?, 15);
    let x = c.hincrbyfloat(&h, "n", 0.5).await?;
    assert!(near(x, 15.5, 1e-9), "{x}");
    assert_eq!(
        c.hget::<Option<String>>(&h, "f2").await?.as_deref(),
        Some("v2")
    );
    assert_eq!(c.hget::<Option<String>>(&h, "nope").await?, None);
    let got: Vec<Option<String>> = c.hmget(&h, ["f1", "nope"]).await?;
    assert_eq!(got, [Some("v1".to_string()), None]);
    assert_eq!((c.hlen(&h).await?, c.hexists(&h, "f1").await?), (3, 1));
    assert_eq!(c.hstrlen(&h, "f1").await?, 2);
    assert_eq!(c.hdel(&h, ["f2", "nope"]).await?, 1);
    let keys: HashSet<String> = c.hkeys(&h).await?;
    assert_eq!(keys, HashSet::from(["f1".to_string(), "n".to_string()]));
    assert_eq!(c.hsetnx(&h, "f1", "x").await?, 0);

    // Field expiry: HEXPIRE with conditions, HTTL, HPERSIST.
    let r: Vec<i64> = c.hexpire(&h, 100, ["f1", "nope"]).await?;
    assert_eq!(r, [1, -2]);
    let r: Vec<i64> = c
        .hexpire_with(&h, 50, ["f1"], HexpireOptions::new().nx())
        .await?;
    assert_eq!(r, [0]);
    let r: Vec<i64> = c
        .hexpire_with(&h, 300, ["f1"], HexpireOptions::new().gt())
        .await?;
    assert_eq!(r, [1]);
    let ttls: Vec<i64> = c.httl(&h, ["f1", "n", "nope"]).await?;
    assert!((101..=300).contains(&ttls[0]), "{ttls:?}");
    assert_eq!(ttls[1..], [-1, -2]);
    let r: Vec<i64> = c.hpexpire(&h, 400_000, ["n"]).await?;
    assert_eq!(r, [1]);
    let pttls: Vec<i64> = c.hpttl(&h, ["n"]).await?;
    assert!(pttls[0] > 300_000, "{pttls:?}");
    let r: Vec<i64> = c.hpersist(&h, ["f1", "n", "nope"]).await?;
    assert_eq!(r, [1, 1, -2]);
    let r: Vec<i64> = c.hpersist(&h, ["f1"]).await?;
    assert_eq!(r, [-1]);
    let ttls: Vec<i64> = c.httl(&h, ["f1"]).await?;
    assert_eq!(ttls, [-1]);

    // HSETEX with field conditions and a TTL.
    let h2 = key(p, "hash:ex");
    let set = c
        .hsetex_with(&h2, [("a", "1"), ("b", "2")], HsetexOptions::new().ex(100))
        .await?;
    assert_eq!(set, 1);
    let set = c
        .hsetex_with(&h2, [("a", "x")], HsetexOptions::new().fnx().ex(100))
        .await?;
    assert_eq!(set, 0, "FNX with an existing field");
    let set = c
        .hsetex_with(&h2, [("c", "3")], HsetexOptions::new().fxx().ex(100))
        .await?;
    assert_eq!(set, 0, "FXX with a missing field");
    let set = c
        .hsetex_with(&h2, [("a", "9")], HsetexOptions::new().fxx().keepttl())
        .await?;
    assert_eq!(set, 1);
    let ttls: Vec<i64> = c.httl(&h2, ["a", "b", "c"]).await?;
    assert!(ttls[..2].iter().all(|t| (1..=100).contains(t)), "{ttls:?}");
    assert_eq!(ttls[2], -2);
    assert_eq!(c.hsetex(&h2, [("d", "4")]).await?, 1);
    assert_eq!(c.httl::<Vec<i64>>(&h2, ["d"]).await?, [-1]);

    // HGETEX: read and change the TTL.
    let got: Vec<Option<String>> = c
        .hgetex_with(&h2, ["a", "nope"], HgetexOptions::new().persist())
        .await?;
    assert_eq!(got, [Some("9".to_string()), None]);
    assert_eq!(c.httl::<Vec<i64>>(&h2, ["a"]).await?, [-1]);
    let got: Vec<String> = c
        .hgetex_with(&h2, ["d"], HgetexOptions::new().ex(10))
        .await?;
    assert_eq!(got, ["4"]);
    let ttl = c.httl::<Vec<i64>>(&h2, ["d"]).await?[0];
    assert!((1..=10).contains(&ttl), "{ttl}");
    let got: Vec<String> = c.hgetex(&h2, ["b"]).await?;
    assert_eq!(got, ["2"]);
    let got: Vec<Option<String>> = c.hgetdel(&h2, ["b", "nope"]).await?;
    assert_eq!(got, [Some("2".to_string()), None]);

    // HRANDFIELD: one field, a count, with values.
    let fields = HashSet::from(["f1".to_string(), "n".to_string()]);
    let one: String = c.hrandfield(&h).await?;
    assert!(fields.contains(&one), "{one}");
    let distinct: Vec<String> = c
        .hrandfield_with(&h, HrandfieldOptions::new().count(5))
        .await?;
    assert_eq!(distinct.len(), 2, "a positive count gives distinct fields");
    let repeated: Vec<String> = c
        .hrandfield_with(&h, HrandfieldOptions::new().count(-4))
        .await?;
    assert_eq!(repeated.len(), 4);
    assert!(repeated.iter().all(|f| fields.contains(f)));
    let pairs: Vec<(String, String)> = c
        .hrandfield_with(&h, HrandfieldOptions::new().count(2).withvalues())
        .await?;
    let all: HashMap<String, String> = c.hgetall(&h).await?;
    assert_eq!(pairs.len(), 2);
    assert!(
        pairs.iter().all(|(f, v)| all.get(f) == Some(v)),
        "{pairs:?}"
    );
    assert_eq!(
        c.hrandfield::<Option<String>>(key(p, "hash:missing"))
            .await?,
        None
    );
    Ok(())
}

family!(
    /// LPUSH/RPUSH, LRANGE, LMOVE, LPOS, LINSERT, BLPOP.
    lists => lists_family
);

async fn lists_family(p: Protocol, c: &Valkey) -> Result<()> {
    let (l, l2) = (key(p, "list"), key(p, "list:2"));
    assert_eq!(c.lpush(&l, ["b", "a"]).await?, 2);
    assert_eq!(c.rpush(&l, ["c", "d"]).await?, 4);
    assert_eq!(
        c.lrange::<Vec<String>>(&l, 0, -1).await?,
        ["a", "b", "c", "d"]
    );
    let moved: Option<String> = c.lmove(&l, &l2, Side::Left, Side::Right).await?;
    assert_eq!(moved.as_deref(), Some("a"));
    let moved: Option<String> = c.lmove(&l, &l2, Side::Right, Side::Left).await?;
    assert_eq!(moved.as_deref(), Some("d"));
    assert_eq!(c.lrange::<Vec<String>>(&l2, 0, -1).await?, ["d", "a"]);
    let none: Option<String> = c
        .lmove(key(p, "list:missing"), &l2, Side::Left, Side::Left)
        .await?;
    assert_eq!(none, None);

    // l is [b, c]
    assert_eq!(c.lpos::<Option<i64>>(&l, "c").await?, Some(1));
    assert_eq!(c.lpos::<Option<i64>>(&l, "zz").await?, None);
    c.rpush(&l, ["b"]).await?;
    let all: Vec<i64> = c.lpos_with(&l, "b", LposOptions::new().count(0)).await?;
    assert_eq!(all, [0, 2]);
    let last: Option<i64> = c.lpos_with(&l, "b", LposOptions::new().rank(-1)).await?;
    assert_eq!(last, Some(2));
    assert_eq!(c.linsert(&l, InsertPosition::Before, "c", "x").await?, 4);
    assert_eq!(c.linsert(&l, InsertPosition::After, "nope", "y").await?, -1);
    assert_eq!(
        c.lrange::<Vec<String>>(&l, 0, -1).await?,
        ["b", "x", "c", "b"]
    );
    assert_eq!(
        c.lindex::<Option<String>>(&l, 1).await?.as_deref(),
        Some("x")
    );
    c.lset(&l, 1, "X").await?;
    assert_eq!(c.lrem(&l, 0, "b").await?, 2);
    assert_eq!(c.llen(&l).await?, 2);

    // Blocking pops: an element at once from a non-empty list, nil after
    // the timeout on an empty one.
    let popped: Option<(String, String)> = c.blpop([&l], 1.0).await?;
    assert_eq!(popped, Some((l.clone(), "X".to_string())));
    let popped: Option<(String, String)> = c.brpop([key(p, "list:empty"), l.clone()], 1.0).await?;
    assert_eq!(popped, Some((l.clone(), "c".to_string())));
    let none: Option<(String, String)> = c.blpop([key(p, "list:empty")], 0.1).await?;
    assert_eq!(none, None);

    // Counted pops and LMPOP.
    c.rpush(&l, ["1", "2", "3"]).await?;
    let two: Vec<String> = c.lpop_with(&l, LpopOptions::new().count(2)).await?;
    assert_eq!(two, ["1", "2"]);
    let (from, items): (String, Vec<String>) = c
        .lmpop([key(p, "list:empty"), l.clone()], Side::Right)
        .await?;
    assert_eq!((from, items), (l.clone(), vec!["3".to_string()]));
    assert_eq!(c.exists(&l).await?, 0);
    Ok(())
}

family!(
    /// SADD, SMEMBERS into a HashSet, SINTER, SMISMEMBER, SRANDMEMBER.
    sets => sets_family
);

async fn sets_family(p: Protocol, c: &Valkey) -> Result<()> {
    let (s1, s2) = (key(p, "set:1"), key(p, "set:2"));
    let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
    assert_eq!(c.sadd(&s1, ["a", "b", "c"]).await?, 3);
    assert_eq!(c.sadd(&s1, "a").await?, 0);
    assert_eq!(
        c.smembers::<HashSet<String>>(&s1).await?,
        set(&["a", "b", "c"])
    );
    c.sadd(&s2, ["b", "c", "d"]).await?;
    assert_eq!(
        c.sinter::<HashSet<String>>([&s1, &s2]).await?,
        set(&["b", "c"])
    );
    assert_eq!(
        c.sunion::<HashSet<String>>([&s1, &s2]).await?,
        set(&["a", "b", "c", "d"])
    );
    assert_eq!(c.sdiff::<HashSet<String>>([&s1, &s2]).await?, set(&["a"]));
    assert_eq!(c.sintercard([&s1, &s2]).await?, 2);
    let dst = key(p, "set:dst");
    assert_eq!(c.sinterstore(&dst, [&s1, &s2]).await?, 2);
    assert_eq!(c.scard(&dst).await?, 2);
    let flags: Vec<bool> = c.smismember(&s1, ["a", "z", "c"]).await?;
    assert_eq!(flags, [true, false, true]);
    assert_eq!(c.sismember(&s1, "z").await?, 0);

    let members = set(&["a", "b", "c"]);
    let one: String = c.srandmember(&s1).await?;
    assert!(members.contains(&one));
    let two: Vec<String> = c
        .srandmember_with(&s1, SrandmemberOptions::new().count(2))
        .await?;
    assert_eq!(two.iter().collect::<HashSet<_>>().len(), 2, "{two:?}");
    let five: Vec<String> = c
        .srandmember_with(&s1, SrandmemberOptions::new().count(-5))
        .await?;
    assert_eq!(five.len(), 5);
    assert!(five.iter().all(|m| members.contains(m)));
    assert_eq!(
        c.srandmember::<Option<String>>(key(p, "set:missing"))
            .await?,
        None
    );

    assert_eq!(c.smove(&s1, &s2, "a").await?, 1);
    assert_eq!(c.srem(&s2, ["a", "b", "z"]).await?, 2);
    let popped: HashSet<String> = c.spop_with(&s2, SpopOptions::new().count(5)).await?;
    assert_eq!(popped, set(&["c", "d"]));
    Ok(())
}

family!(
    /// ZADD pairs and options, ZRANGE WITHSCORES, ZSCORE, ZINCRBY, ZRANK,
    /// ZPOPMIN, ZRANGESTORE.
    sorted_sets => sorted_sets_family
);

async fn sorted_sets_family(p: Protocol, c: &Valkey) -> Result<()> {
    let z = key(p, "zset");
    let added: i64 = c.zadd(&z, [(1.0, "a"), (2.0, "b"), (3.0, "c")]).await?;
    assert_eq!(added, 3);
    // NX leaves existing members; XX CH updates and counts only those.
    let n: i64 = c
        .zadd_with(&z, [(10.0, "a")], ZaddOptions::new().nx())
        .await?;
    assert_eq!(n, 0);
    assert_eq!(c.zscore(&z, "a").await?, Some(1.0));
    let n: i64 = c
        .zadd_with(&z, [(5.0, "a"), (0.5, "new")], ZaddOptions::new().xx().ch())
        .await?;
    assert_eq!(n, 1);
    assert_eq!(c.zscore(&z, "new").await?, None);
    let n: i64 = c
        .zadd_with(&z, [(4.0, "a")], ZaddOptions::new().gt().ch())
        .await?;
    assert_eq!(n, 0, "GT: 4 is not above 5");
    // INCR: the new score, or nil when a condition stops it.
    let score: Option<f64> = c
        .zadd_with(&z, (2.5, "a"), ZaddOptions::new().incr())
        .await?;
    assert_eq!(score, Some(7.5));
    let score: Option<f64> = c
        .zadd_with(&z, (1.0, "a"), ZaddOptions::new().nx().incr())
        .await?;
    assert_eq!(score, None);

    let with_scores: Vec<(String, f64)> = c
        .zrange_with(&z, 0, -1, ZrangeOptions::new().withscores())
        .await?;
    let expect = [("b", 2.0), ("c", 3.0), ("a", 7.5)].map(|(m, s)| (m.to_string(), s));
    assert_eq!(with_scores, expect);
    let as_map: HashMap<String, f64> = c
        .zrange_with(&z, 0, -1, ZrangeOptions::new().withscores())
        .await?;
    assert_eq!(as_map["a"], 7.5);
    assert_eq!(c.zrange::<Vec<String>>(&z, 0, -1).await?, ["b", "c", "a"]);
    let above: Vec<String> = c
        .zrange_with(&z, "(2", "+inf", ZrangeOptions::new().byscore())
        .await?;
    assert_eq!(above, ["c", "a"]);
    let top: Vec<String> = c
        .zrange_with(
            &z,
            "+inf",
            "-inf",
            ZrangeOptions::new().byscore().rev().limit(0, 1),
        )
        .await?;
    assert_eq!(top, ["a"]);

    assert_eq!(c.zincrby(&z, 2, "b").await?, 4.0);
    assert_eq!(c.zscore(&z, "zz").await?, None);
    let scores: Vec<Option<f64>> = c.zmscore(&z, ["c", "zz"]).await?;
    assert_eq!(scores, [Some(3.0), None]);
    // now c=3, b=4, a=7.5
    assert_eq!(c.zrank::<Option<i64>>(&z, "c").await?, Some(0));
    assert_eq!(c.zrank::<Option<i64>>(&z, "zz").await?, None);
    let rank: Option<(i64, f64)> = c
        .zrank_with(&z, "a", ZrankOptions::new().withscore())
        .await?;
    assert_eq!(rank, Some((2, 7.5)));
    assert_eq!(c.zrevrank::<i64>(&z, "a").await?, 0);
    assert_eq!(c.zcount(&z, 3.0, 5.0).await?, 2);
    assert_eq!(c.zcount(&z, f64::NEG_INFINITY, f64::INFINITY).await?, 3);
    assert_eq!(c.zcard(&z).await?, 3);

    let dst = key(p, "zset:dst");
    assert_eq!(c.zrangestore(&dst, &z, 0, 1).await?, 2);
    assert_eq!(c.zrange::<Vec<String>>(&dst, 0, -1).await?, ["c", "b"]);
    let n = c
        .zrangestore_with(&dst, &z, 4, "+inf", ZrangestoreOptions::new().byscore())
        .await?;
    assert_eq!(n, 2);
    assert_eq!(c.zrange::<Vec<String>>(&dst, 0, -1).await?, ["b", "a"]);

    let min: Vec<(String, f64)> = c.zpopmin(&z).await?;
    assert_eq!(min, [("c".to_string(), 3.0)]);
    let (member, score): (String, f64) = c.zpopmin(&dst).await?;
    assert_eq!((member.as_str(), score), ("b", 4.0));
    let rest: Vec<(String, f64)> = c.zpopmin_with(&z, ZpopminOptions::new().count(5)).await?;
    assert_eq!(rest, [("b".to_string(), 4.0), ("a".to_string(), 7.5)]);
    let empty: Vec<(String, f64)> = c.zpopmin(&z).await?;
    assert!(empty.is_empty());
    Ok(())
}

/// A stream entry: its id and fields.
type Entry = (String, HashMap<String, String>);

family!(
    /// XADD (auto and explicit ids, trimming), XLEN, XRANGE, consumer
    /// groups (XGROUP CREATE, XREADGROUP, XACK, XPENDING, XCLAIM,
    /// XAUTOCLAIM), XTRIM, XINFO STREAM.
    streams => streams_family
);

async fn streams_family(p: Protocol, c: &Valkey) -> Result<()> {
    let s = key(p, "stream");
    let id1: String = c
        .xadd(&s, XaddIdSelector::Id("1-1".into()), [("f", "v1")])
        .await?;
    assert_eq!(id1, "1-1");
    let id2: String = c
        .xadd(&s, XaddIdSelector::Id("2-1".into()), ("f", "v2"))
        .await?;
    assert_eq!(id2, "2-1");
    let id3: String = c
        .xadd(&s, XaddIdSelector::AutoId, [("f", "v3"), ("g", "w")])
        .await?;
    let ms: u64 = id3
        .split('-')
        .next()
        .unwrap()
        .parse()
        .expect("an id ms-seq");
    assert!(ms > 1_600_000_000_000, "{id3}");
    let err = c
        .xadd::<String>(&s, XaddIdSelector::Id("1-0".into()), [("f", "old")])
        .await
        .unwrap_err();
    assert!(
        err.server_error().is_some(),
        "an id below the top is refused: {err}"
    );
    let none: Option<String> = c
        .xadd_with(
            key(p, "stream:none"),
            XaddIdSelector::AutoId,
            [("f", "v")],
            XaddOptions::new().nomkstream(),
        )
        .await?;
    assert_eq!(none, None);
    assert_eq!(c.xlen(&s).await?, 3);

    let entries: Vec<Entry> = c.xrange(&s, "-", "+").await?;
    assert_eq!(
        entries.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        [&*id1, &*id2, &*id3]
    );
    assert_eq!(entries[2].1["g"], "w");
    let first: Vec<Entry> = c
        .xrange_with(&s, "-", "+", XrangeOptions::new().count(1))
        .await?;
    assert_eq!(first[0].1["f"], "v1");
    let last: Vec<Entry> = c
        .xrevrange_with(&s, "+", "-", XrevrangeOptions::new().count(1))
        .await?;
    assert_eq!(last[0].0, id3);

    // Groups: MKSTREAM makes the key.
    let s2 = key(p, "stream:made");
    c.xgroup_create_with(
        &s2,
        "g",
        XgroupCreateIdSelector::NewId,
        XgroupCreateOptions::new().mkstream(),
    )
    .await?;
    assert_eq!((c.exists(&s2).await?, c.xlen(&s2).await?), (1, 0));
    c.xgroup_create(&s, "g", XgroupCreateIdSelector::Id("0".into()))
        .await?;

    let read: HashMap<String, Vec<Entry>> = c
        .xreadgroup_with("g", "c1", [&s], [">"], XreadgroupOptions::new().count(2))
        .await?;
    let got: Vec<&str> = read[&s].iter().map(|e| e.0.as_str()).collect();
    assert_eq!(got, [&*id1, &*id2]);
    let read: Option<HashMap<String, Vec<Entry>>> = c.xreadgroup("g", "c1", [&s], [">"]).await?;
    assert_eq!(read.expect("one more entry")[&s][0].0, id3);
    let read: Option<HashMap<String, Vec<Entry>>> = c.xreadgroup("g", "c1", [&s], [">"]).await?;
    assert!(
        read.as_ref().is_none_or(|r| r.is_empty()),
        "nothing new: {read:?}"
    );

    let (count, low, high, consumers): (i64, String, String, Vec<(String, i64)>) =
        c.xpending(&s, "g").await?;
    assert_eq!((count, low, high), (3, id1.clone(), id3.clone()));
    assert_eq!(consumers, [("c1".to_string(), 3)]);
    assert_eq!(c.xack(&s, "g", [&id1]).await?, 1);
    assert_eq!(c.xack(&s, "g", [&id1]).await?, 0);
    let pending: Vec<(String, String, i64, i64)> = c
        .xpending_with(&s, "g", XpendingOptions::new().filters("-", "+", 10))
        .await?;
    assert_eq!(pending.len(), 2);
    assert!(
        pending
            .iter()
            .all(|(_, consumer, _, deliveries)| consumer == "c1" && *deliveries == 1)
    );
    let pending: Vec<(String, String, i64, i64)> = c
        .xpending_with(
            &s,
            "g",
            XpendingOptions::new()
                .idle(0)
                .filters("-", "+", 10)
                .consumer("nobody"),
        )
        .await?;
    assert!(pending.is_empty());

    // XCLAIM one entry to c2 (entries), one by id only.
    let claimed: Vec<Entry> = c.xclaim(&s, "g", "c2", 0, [&id2]).await?;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].1["f"], "v2");
    let ids: Vec<String> = c
        .xclaim_with(&s, "g", "c2", 0, [&id3], XclaimOptions::new().justid())
        .await?;
    assert_eq!(ids, std::slice::from_ref(&id3));
    let (_, _, _, consumers): (i64, String, String, Vec<(String, i64)>) =
        c.xpending(&s, "g").await?;
    assert_eq!(consumers, [("c2".to_string(), 2)]);
    // XAUTOCLAIM everything to c3: the next cursor, the entries, the
    // deleted ids.
    let (cursor, entries, deleted): (String, Vec<Entry>, Vec<String>) = c
        .xautoclaim_with(&s, "g", "c3", 0, "0-0", XautoclaimOptions::new().count(10))
        .await?;
    assert_eq!(cursor, "0-0");
    assert_eq!(
        entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        [id2.clone(), id3.clone()]
    );
    assert!(deleted.is_empty());

    // XINFO STREAM, plain and FULL.
    let info: HashMap<String, Value> = c.xinfo_stream(&s).await?;
    assert_eq!(i64::from_value(info["length"].clone())?, 3);
    assert_eq!(i64::from_value(info["groups"].clone())?, 1);
    assert_eq!(String::from_value(info["last-generated-id"].clone())?, id3);
    let full: HashMap<String, Value> = c
        .xinfo_stream_with(&s, XinfoStreamOptions::new().full().count(10))
        .await?;
    let full_entries: Vec<Entry> = FromValue::from_value(full["entries"].clone())?;
    assert_eq!(full_entries.len(), 3);
    let groups: Vec<HashMap<String, Value>> = c.xinfo_groups(&s).await?;
    assert_eq!(String::from_value(groups[0]["name"].clone())?, "g");

    // XTRIM: exact MAXLEN, then MINID past the last id.
    assert_eq!(
        c.xtrim_with(&s, TrimStrategy::Maxlen, 1, XtrimOptions::new().equal())
            .await?,
        2
    );
    assert_eq!(c.xlen(&s).await?, 1);
    assert_eq!(
        c.xtrim(&s, TrimStrategy::Minid, "99999999999999-0").await?,
        1
    );
    assert_eq!(c.xlen(&s).await?, 0);
    // XADD with exact trimming keeps the newest two.
    let s3 = key(p, "stream:capped");
    for i in 0..4 {
        let _: String = c
            .xadd_with(
                &s3,
                XaddIdSelector::AutoId,
                [("i", i)],
                XaddOptions::new().trim(TrimStrategy::Maxlen, 2).equal(),
            )
            .await?;
    }
    let kept: Vec<Entry> = c.xrange(&s3, "-", "+").await?;
    assert_eq!(
        kept.iter().map(|e| e.1["i"].as_str()).collect::<Vec<_>>(),
        ["2", "3"]
    );
    Ok(())
}

family!(
    /// SETBIT, GETBIT, BITCOUNT, BITOP, BITPOS, BITFIELD.
    bitmaps => bitmaps_family
);

async fn bitmaps_family(p: Protocol, c: &Valkey) -> Result<()> {
    let (b, b2, dst) = (key(p, "bits"), key(p, "bits:2"), key(p, "bits:dst"));
    assert_eq!(c.setbit(&b, 7, 1).await?, 0);
    assert_eq!(c.setbit(&b, 7, 1).await?, 1, "the old bit");
    assert_eq!(c.setbit(&b, 9, 1).await?, 0);
    assert_eq!(
        (
            c.getbit(&b, 7).await?,
            c.getbit(&b, 8).await?,
            c.getbit(&b, 100).await?
        ),
        (1, 0, 0)
    );
    assert_eq!(c.bitcount(&b).await?, 2);
    let in_byte_1 = c
        .bitcount_with(&b, BitcountOptions::new().range(1).end(1))
        .await?;
    assert_eq!(in_byte_1, 1);
    let in_bits = c
        .bitcount_with(&b, BitcountOptions::new().range(0).end(7).bit())
        .await?;
    assert_eq!(in_bits, 1);
    assert_eq!(c.bitpos(&b, 1).await?, 7);
    assert_eq!(c.bitpos(&b, 0).await?, 0);
    assert_eq!(
        c.bitpos_with(&b, 1, BitposOptions::new().range(1)).await?,
        9
    );
    assert_eq!(
        c.bitpos_with(&b, 1, BitposOptions::new().range(8).end(15).bit())
            .await?,
        9
    );

    // b is bits 7 and 9 (2 bytes); b2 is bit 7 (1 byte).
    c.setbit(&b2, 7, 1).await?;
    assert_eq!(c.bitop(BitOperation::And, &dst, [&b, &b2]).await?, 2);
    assert_eq!(c.bitcount(&dst).await?, 1);
    assert_eq!(c.bitop(BitOperation::Or, &dst, [&b, &b2]).await?, 2);
    assert_eq!(c.bitcount(&dst).await?, 2);
    assert_eq!(c.bitop(BitOperation::Not, &dst, [&b2]).await?, 1);
    assert_eq!(c.bitcount(&dst).await?, 7);

    // BITFIELD: SET u8 to 200, a saturating INCRBY of 100, GET.
    let bf = key(p, "bits:field");
    let u8_at_0 = || ("u8".to_string(), 0);
    let ops = vec![
        BitfieldOperation::Write(BitfieldWrite {
            overflow_block: None,
            write_operation: BitfieldWriteOperation::SetBlock(BitfieldSetBlock {
                encoding: u8_at_0().0,
                offset: u8_at_0().1,
                value: 200,
            }),
        }),
        BitfieldOperation::Write(BitfieldWrite {
            overflow_block: Some(BitfieldOverflowBlock::Sat),
            write_operation: BitfieldWriteOperation::IncrbyBlock(BitfieldIncrbyBlock {
                encoding: u8_at_0().0,
                offset: u8_at_0().1,
                increment: 100,
            }),
        }),
        BitfieldOperation::GetBlock(BitfieldGetBlock {
            encoding: u8_at_0().0,
            offset: u8_at_0().1,
        }),
    ];
    let out: Vec<i64> = c
        .bitfield_with(&bf, BitfieldOptions::new().operation(ops))
        .await?;
    assert_eq!(out, [0, 255, 255]);
    let out: Vec<i64> = c
        .bitfield_ro_with(&bf, BitfieldRoOptions::new().get("u8", 0).get("u4", 0))
        .await?;
    assert_eq!(out, [255, 15]);
    Ok(())
}

family!(
    /// PFADD, PFCOUNT, PFMERGE.
    hyperloglog => hyperloglog_family
);

async fn hyperloglog_family(p: Protocol, c: &Valkey) -> Result<()> {
    let (h1, h2, h3, dst) = (
        key(p, "hll:1"),
        key(p, "hll:2"),
        key(p, "hll:3"),
        key(p, "hll:dst"),
    );
    assert_eq!(
        c.pfadd_with(&h1, PfaddOptions::new().element(["a", "b", "c"]))
            .await?,
        1
    );
    assert_eq!(
        c.pfadd_with(&h1, PfaddOptions::new().element(["a", "b"]))
            .await?,
        0
    );
    assert_eq!(c.pfadd(&h3).await?, 1, "creates an empty HLL");
    assert_eq!(c.pfadd(&h3).await?, 0);
    assert_eq!(c.pfcount(&h1).await?, 3);
    assert_eq!(c.pfcount(&h3).await?, 0);
    c.pfadd_with(&h2, PfaddOptions::new().element(["c", "d"]))
        .await?;
    assert_eq!(c.pfcount([&h1, &h2]).await?, 4);
    c.pfmerge_with(&dst, PfmergeOptions::new().sourcekey([&h1, &h2]))
        .await?;
    assert_eq!(c.pfcount(&dst).await?, 4);
    c.pfmerge(&dst).await?;
    assert_eq!(c.pfcount(&dst).await?, 4);
    Ok(())
}

family!(
    /// GEOADD, GEODIST with a unit, GEOPOS, GEOSEARCH (FROMLONLAT and
    /// BYRADIUS, FROMMEMBER and BYBOX), GEOSEARCHSTORE.
    geo => geo_family
);

async fn geo_family(p: Protocol, c: &Valkey) -> Result<()> {
    let g = key(p, "geo");
    let places = [
        (13.361389, 38.115556, "Palermo"),
        (15.087269, 37.502669, "Catania"),
    ];
    assert_eq!(c.geoadd(&g, places).await?, 2);
    assert_eq!(
        c.geoadd_with(&g, [places[0]], GeoaddOptions::new().nx())
            .await?,
        0
    );
    assert_eq!(
        c.geoadd_with(
            &g,
            [(13.5, 38.0, "Palermo")],
            GeoaddOptions::new().xx().ch()
        )
        .await?,
        1
    );
    c.geoadd(&g, [places[0]]).await?;

    let m = c
        .geodist(&g, "Palermo", "Catania")
        .await?
        .expect("both present");
    assert!(near(m, 166_274.15, 1.0), "{m}");
    let km = c
        .geodist_with(&g, "Palermo", "Catania", GeodistOptions::new().km())
        .await?;
    assert!(near(km.unwrap(), 166.274, 0.01), "{km:?}");
    let mi = c
        .geodist_with(&g, "Palermo", "Catania", GeodistOptions::new().mi())
        .await?;
    assert!(near(mi.unwrap(), 103.318, 0.01), "{mi:?}");
    assert_eq!(c.geodist(&g, "Palermo", "Nowhere").await?, None);

    let pos: Vec<Option<(f64, f64)>> = c
        .geopos_with(&g, GeoposOptions::new().member(["Palermo", "Catania"]))
        .await?;
    let (lon, lat) = pos[0].expect("Palermo has a position");
    assert!(
        near(lon, 13.361389, 1e-4) && near(lat, 38.115556, 1e-4),
        "{pos:?}"
    );
    // With a missing member the reply mixes arrays and nils.
    let pos: Vec<Option<(f64, f64)>> = c
        .geopos_with(&g, GeoposOptions::new().member(["Nowhere", "Catania"]))
        .await?;
    assert_eq!(pos[0], None);
    let catania = pos[1].expect("Catania has a position");
    assert!(
        near(catania.0, 15.087269, 1e-4) && near(catania.1, 37.502669, 1e-4),
        "{pos:?}"
    );
    let hashes: Vec<String> = c
        .geohash_with(&g, GeohashOptions::new().member("Palermo"))
        .await?;
    assert_eq!(hashes, ["sqc8b49rny0"]);

    let within = |radius| {
        GeosearchBy::Circle(GeosearchCircle {
            radius,
            unit: GeoUnit::Km,
        })
    };
    let names: Vec<String> = c
        .geosearch_with(
            &g,
            within(200.0),
            GeosearchOptions::new().fromlonlat(15.0, 37.0).asc(),
        )
        .await?;
    assert_eq!(names, ["Catania", "Palermo"]);
    let names: Vec<String> = c
        .geosearch_with(
            &g,
            within(100.0),
            GeosearchOptions::new().fromlonlat(15.0, 37.0),
        )
        .await?;
    assert_eq!(names, ["Catania"]);
    let with_dist: Vec<(String, f64)> = c
        .geosearch_with(
            &g,
            within(200.0),
            GeosearchOptions::new()
                .fromlonlat(15.0, 37.0)
                .withdist()
                .desc(),
        )
        .await?;
    assert_eq!(with_dist.len(), 2);
    assert_eq!(with_dist[0].0, "Palermo");
    assert!(near(with_dist[1].1, 56.4413, 0.01), "{with_dist:?}");
    let boxed: Vec<String> = c
        .geosearch_with(
            &g,
            GeosearchBy::Box(GeosearchBox {
                width: 400.0,
                height: 400.0,
                unit: GeoUnit::Km,
            }),
            GeosearchOptions::new().frommember("Palermo").asc().count(1),
        )
        .await?;
    assert_eq!(boxed, ["Palermo"]);

    // BYPOLYGON (Valkey 9) takes no FROMMEMBER/FROMLONLAT; the vertex
    // count is the caller's to give.
    let corner = |longitude, latitude| GeosearchVertices {
        longitude,
        latitude,
    };
    let square = vec![
        corner(13.0, 38.0),
        corner(14.0, 38.0),
        corner(14.0, 39.0),
        corner(13.0, 39.0),
    ];
    let in_square: Vec<String> = c
        .geosearch_with(
            &g,
            GeosearchBy::Polygon(GeosearchPolygon { vertices: square }),
            GeosearchOptions::new(),
        )
        .await?;
    assert_eq!(in_square, ["Palermo"]);

    let dst = key(p, "geo:dst");
    let stored = c
        .geosearchstore_with(
            &dst,
            &g,
            GeosearchstoreBy::Circle(GeosearchstoreCircle {
                radius: 200.0,
                unit: GeoUnit::Km,
            }),
            GeosearchstoreOptions::new()
                .fromlonlat(15.0, 37.0)
                .asc()
                .count(1),
        )
        .await?;
    assert_eq!(stored, 1);
    assert_eq!(c.zrange::<Vec<String>>(&dst, 0, -1).await?, ["Catania"]);
    let stored = c
        .geosearchstore_with(
            &dst,
            &g,
            GeosearchstoreBy::Circle(GeosearchstoreCircle {
                radius: 200.0,
                unit: GeoUnit::Km,
            }),
            GeosearchstoreOptions::new()
                .fromlonlat(15.0, 37.0)
                .storedist(),
        )
        .await?;
    assert_eq!(stored, 2);
    let d = c.zscore(&dst, "Catania").await?.unwrap();
    assert!(near(d, 56.4413, 0.01), "{d}");
    let radius: Vec<String> = c.georadius(&g, 15.0, 37.0, 200.0, GeoUnit::Km).await?;
    assert_eq!(radius.len(), 2);
    Ok(())
}

family!(
    /// EVAL with keys and args, SCRIPT LOAD/EXISTS/FLUSH, EVALSHA, FUNCTION
    /// LOAD/LIST/DELETE, FCALL, FCALL_RO.
    scripting_and_functions => scripting_family
);

async fn scripting_family(p: Protocol, c: &Valkey) -> Result<()> {
    let k = key(p, "script");
    let no_keys: [&str; 0] = [];
    let both: Vec<String> = c
        .eval_with(
            "return {KEYS[1], ARGV[1]}",
            [&k],
            EvalOptions::new().arg(["x"]),
        )
        .await?;
    assert_eq!(both, [k.clone(), "x".to_string()]);
    assert_eq!(c.eval::<i64>("return 42", no_keys).await?, 42);
    let ok: String = c
        .eval_with(
            "return redis.call('SET', KEYS[1], ARGV[1])",
            [&k],
            EvalOptions::new().arg("v"),
        )
        .await?;
    assert_eq!(ok, "OK");
    let v: String = c.eval_ro("return redis.call('GET', KEYS[1])", [&k]).await?;
    assert_eq!(v, "v");
    let err = c
        .eval_ro::<String>("return redis.call('SET', KEYS[1], 'w')", [&k])
        .await
        .unwrap_err();
    assert!(
        err.server_error().is_some(),
        "EVAL_RO refuses a write: {err}"
    );

    let sha = c.script_load("return ARGV[1] .. KEYS[1]").await?;
    assert_eq!(sha.len(), 40, "{sha}");
    let r: String = c
        .evalsha_with(&sha, [&k], EvalshaOptions::new().arg("pre-"))
        .await?;
    assert_eq!(r, format!("pre-{k}"));
    let unknown = "f".repeat(40);
    let exists: Vec<bool> = c.script_exists([&sha, &unknown]).await?;
    assert_eq!(exists, [true, false]);
    let err = c.evalsha::<String>(&unknown, [&k]).await.unwrap_err();
    assert_eq!(err.code(), Some("NOSCRIPT"), "{err}");
    c.script_flush_with(ScriptFlushOptions::new().sync())
        .await?;
    assert_eq!(c.script_exists::<Vec<bool>>([&sha]).await?, [false]);

    // Functions: a library per protocol, as functions are server-wide.
    let lib = format!("famlib{}", n(p));
    let (echo, get) = (format!("fam_echo{}", n(p)), format!("fam_get{}", n(p)));
    let code = format!(
        "#!lua name={lib}\n\
         redis.register_function('{echo}', function(keys, args) return keys[1] .. ':' .. args[1] end)\n\
         redis.register_function{{function_name='{get}', callback=function(keys, args) \
         return redis.call('GET', keys[1]) end, flags={{'no-writes'}}}}\n"
    );
    assert_eq!(c.function_load(&code).await?, lib);
    let err = c.function_load(&code).await.unwrap_err();
    assert!(err.server_error().is_some(), "loaded twice: {err}");
    assert_eq!(
        c.function_load_with(&code, FunctionLoadOptions::new().replace())
            .await?,
        lib
    );
    let r: String = c
        .fcall_with(&echo, [&k], FcallOptions::new().arg("a"))
        .await?;
    assert_eq!(r, format!("{k}:a"));
    let r: Option<String> = c.fcall_ro(&get, [&k]).await?;
    assert_eq!(r.as_deref(), Some("v"));
    // FCALL_RO of a function without the `no-writes` flag is refused.
    let err = c
        .fcall_ro_with::<String>(&echo, [&k], FcallRoOptions::new().arg("b"))
        .await
        .unwrap_err();
    assert!(err.server_error().is_some(), "{err}");
    let libs: Vec<HashMap<String, Value>> = c
        .function_list_with(FunctionListOptions::new().libraryname(&lib))
        .await?;
    assert_eq!(libs.len(), 1);
    assert_eq!(String::from_value(libs[0]["library_name"].clone())?, lib);
    c.function_delete(&lib).await?;
    let err = c.fcall::<String>(&echo, [&k]).await.unwrap_err();
    assert!(err.server_error().is_some(), "deleted: {err}");
    Ok(())
}

family!(
    /// PUBLISH (0 receivers, then 1), PUBSUB CHANNELS and NUMSUB.
    pubsub_publish => pubsub_family
);

async fn pubsub_family(p: Protocol, c: &Valkey) -> Result<()> {
    let ch = key(p, "chan");
    assert_eq!(c.publish(&ch, "nobody").await?, 0);
    assert!(!c.pubsub_channels::<Vec<String>>().await?.contains(&ch));
    let mut sub = c.subscriber().await?;
    sub.subscribe([&ch]).await?;
    assert_eq!(c.publish(&ch, "hello").await?, 1);
    let message = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a message within 5 s")
        .expect("the subscriber is open");
    assert_eq!(message.payload_str(), Some("hello"));
    let pattern = format!("{p:?}:ch*");
    let channels: Vec<String> = c
        .pubsub_channels_with(PubsubChannelsOptions::new().pattern(&pattern))
        .await?;
    assert_eq!(channels, std::slice::from_ref(&ch));
    let counts: Vec<(String, i64)> = c
        .pubsub_numsub_with(PubsubNumsubOptions::new().channel([&ch, &key(p, "other")]))
        .await?;
    assert_eq!(counts, [(ch.clone(), 1), (key(p, "other"), 0)]);
    assert_eq!(c.pubsub_numpat().await?, 0);
    drop(sub);
    Ok(())
}

family!(
    /// DBSIZE, INFO, CONFIG GET/SET, TIME, LASTSAVE, COMMAND COUNT, MEMORY
    /// USAGE, PING, ECHO.
    server => server_family
);

async fn server_family(p: Protocol, c: &Valkey) -> Result<()> {
    let k = key(p, "server");
    let before = c.dbsize().await?;
    c.set(&k, "a value").await?;
    assert_eq!(c.dbsize().await?, before + 1);

    let info = c.info().await?;
    assert!(
        info.contains("# Server") && info.contains("valkey_version:"),
        "{info:.200}"
    );
    let keyspace = c
        .info_with(InfoOptions::new().section(["keyspace", "clients"]))
        .await?;
    assert!(
        keyspace.contains("# Keyspace") && keyspace.contains("db0:keys="),
        "{keyspace}"
    );
    assert!(
        keyspace.contains("# Clients") && !keyspace.contains("# Server"),
        "{keyspace}"
    );

    let config: HashMap<String, String> = c.config_get(["maxmemory-policy", "hz"]).await?;
    assert_eq!(config.len(), 2, "{config:?}");
    let old_policy = config["maxmemory-policy"].clone();
    let (name, hz): (String, i64) = c.config_get("hz").await?;
    assert_eq!(
        (name.as_str(), hz.to_string()),
        ("hz", config["hz"].clone())
    );
    c.config_set([("maxmemory-policy", "allkeys-lru"), ("hz", "20")])
        .await?;
    let (_, policy): (String, String) = c.config_get("maxmemory-policy").await?;
    assert_eq!(policy, "allkeys-lru");
    c.config_set([
        ("maxmemory-policy", old_policy.as_str()),
        ("hz", config["hz"].as_str()),
    ])
    .await?;
    let (_, policy): (String, String) = c.config_get("maxmemory-policy").await?;
    assert_eq!(policy, old_policy);

    let (secs, micros): (i64, i64) = c.time().await?;
    assert!(
        secs > 1_600_000_000 && (0..1_000_000).contains(&micros),
        "{secs} {micros}"
    );
    let last = c.lastsave().await?;
    assert!(last > 1_600_000_000 && last <= secs, "{last}");
    let count = c.command_count().await?;
    assert!(count > 200, "{count}");

    let used = c.memory_usage(&k).await?.expect("the key exists");
    assert!(used > 0, "{used}");
    assert!(
        c.memory_usage_with(&k, MemoryUsageOptions::new().samples(0))
            .await?
            .is_some()
    );
    assert_eq!(c.memory_usage(key(p, "server:missing")).await?, None);

    assert_eq!(c.ping().await?, "PONG");
    assert_eq!(c.ping_with(PingOptions::new().message("hi")).await?, "hi");
    assert_eq!(c.echo::<String>("echo").await?, "echo");
    Ok(())
}

family!(
    /// CLIENT ID, INFO, LIST, GETNAME.
    client_commands => client_family
);

async fn client_family(p: Protocol, c: &Valkey) -> Result<()> {
    let id = c.client_id().await?;
    assert!(id > 0);
    let info = c.client_info().await?;
    assert!(info.contains(&format!("id={id} ")), "{info}");
    assert!(info.contains(&format!("resp={}", n(p))), "{info}");
    assert!(info.contains(&format!("name=families-{}", n(p))), "{info}");
    let list = c.client_list().await?;
    assert!(
        list.lines().any(|l| l.starts_with(&format!("id={id} "))),
        "{list}"
    );
    let mine = c
        .client_list_with(ClientListOptions::new().id([id]))
        .await?;
    assert_eq!(mine.lines().count(), 1, "{mine}");
    assert!(mine.starts_with(&format!("id={id} ")), "{mine}");
    let name: Option<String> = c.client_getname().await?;
    assert_eq!(name, Some(format!("families-{}", n(p))));
    Ok(())
}

family!(
    /// ACL SETUSER, GETUSER, USERS, DRYRUN, DELUSER, WHOAMI, CAT.
    acl => acl_family
);

async fn acl_family(p: Protocol, c: &Valkey) -> Result<()> {
    let user = format!("fam_user{}", n(p));
    c.acl_setuser_with(
        &user,
        AclSetuserOptions::new().rule(["on", ">secret", "~fam:*", "+get", "+set"]),
    )
    .await?;
    let details: HashMap<String, Value> = c.acl_getuser(&user).await?;
    let flags: Vec<String> = FromValue::from_value(details["flags"].clone())?;
    assert!(flags.contains(&"on".to_string()), "{flags:?}");
    let keys: String = FromValue::from_value(details["keys"].clone())?;
    assert_eq!(keys, "~fam:*");
    let none: Option<HashMap<String, Value>> = c.acl_getuser("no_such_user").await?;
    assert!(none.is_none());
    let users: Vec<String> = c.acl_users().await?;
    assert!(
        users.contains(&user) && users.contains(&"default".to_string()),
        "{users:?}"
    );
    let allowed: String = c
        .acl_dryrun_with(&user, "get", AclDryrunOptions::new().arg("fam:x"))
        .await?;
    assert_eq!(allowed, "OK");
    let denied: String = c
        .acl_dryrun_with(&user, "del", AclDryrunOptions::new().arg("fam:x"))
        .await?;
    assert!(denied.contains("no permissions"), "{denied}");
    let rules: Vec<String> = c.acl_list().await?;
    assert!(
        rules
            .iter()
            .any(|r| r.starts_with(&format!("user {user} on"))),
        "{rules:?}"
    );
    assert_eq!(c.acl_whoami().await?, "default");
    let categories: Vec<String> = c.acl_cat().await?;
    assert!(categories.iter().any(|c| c == "string") && categories.iter().any(|c| c == "keyspace"));
    let in_string: Vec<String> = c
        .acl_cat_with(AclCatOptions::new().category("string"))
        .await?;
    assert!(in_string.iter().any(|c| c == "get"), "{in_string:?}");
    assert_eq!(c.acl_deluser([&user]).await?, 1);
    assert_eq!(c.acl_deluser([&user]).await?, 0);
    Ok(())
}

/// The replies of the mixed pipeline: HSET, HGETALL, ZADD, ZRANGE
/// WITHSCORES, SET GET.
type MixedReplies = (
    i64,
    HashMap<String, String>,
    i64,
    Vec<(String, f64)>,
    Option<String>,
);

family!(
    /// Typed calls queued in a Pipeline and a Transaction, read as tuples.
    pipeline_and_transaction => batches_family
);

async fn batches_family(p: Protocol, c: &Valkey) -> Result<()> {
    let a = key(p, "batch:a");
    let mut pipe = Pipeline::new();
    pipe.set(&a, 1).incr(&a).get(&a);
    let ((), n, v): ((), i64, String) = c.pipeline_into(&mut pipe).await?;
    assert_eq!((n, v.as_str()), (2, "2"));

    let (b, h) = (key(p, "batch:b"), key(p, "batch:h"));
    let mut pipe = Pipeline::new();
    pipe.hset(&h, [("f", "v"), ("g", "w")])
        .hgetall(&h)
        .zadd(&b, [(1.5, "m")])
        .zrange_with(&b, 0, -1, ZrangeOptions::new().withscores())
        .set_with(&a, "3", SetOptions::new().get());
    let (added, map, zadded, scores, old): MixedReplies = c.pipeline_into(&mut pipe).await?;
    assert_eq!((added, map.len(), zadded), (2, 2, 1));
    assert_eq!(scores, [("m".to_string(), 1.5)]);
    assert_eq!(old.as_deref(), Some("2"));

    let t = key(p, "batch:tx");
    let mut tx = Transaction::new();
    tx.set(&t, 100).incrby(&t, -30).get(&t).del([&t]).exists(&t);
    let ((), left, read, deleted, exists): ((), i64, String, i64, i64) =
        c.exec_into(&mut tx).await?;
    assert_eq!((left, read.as_str(), deleted, exists), (70, "70", 1, 0));
    // A failed command inside EXEC fails the conversion with its error.
    let mut tx = Transaction::new();
    tx.set(&t, "text").incr(&t);
    let err = c.exec_into::<((), i64)>(&mut tx).await.unwrap_err();
    assert!(err.server_error().is_some(), "{err}");
    Ok(())
}
