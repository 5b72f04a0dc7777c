//! Strings, keys and expiry, hashes, lists, sets and sorted sets.

use super::*;

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
