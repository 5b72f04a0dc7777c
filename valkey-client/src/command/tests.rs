//! Tests of the table, key extraction and repeat safety against the
//! captured valkey-server 9.1.2 data.

use super::*;
use crate::Cmd;
use repeat::{IDEMPOTENT_WRITES, SAFE_WITHOUT_FLAGS};

/// A command from space-separated words (the test modules of `command`
/// share it).
pub(super) fn cmd(words: &str) -> Cmd {
    let mut parts = words.split(' ');
    let mut cmd = Cmd::new(parts.next().unwrap());
    for p in parts {
        cmd.push_arg(p);
    }
    cmd
}

fn keys_of(words: &str) -> Vec<String> {
    let c = cmd(words);
    keys(&c)
        .map(|k| String::from_utf8(k.to_vec()).unwrap())
        .collect()
}

/// The write commands, and the commands with neither `readonly` nor `write`,
/// that we reviewed and class `NotSafe` (the reasons are in `repeat.rs`).
/// A new server command fails `every_command_is_classified` until someone
/// decides about it.
#[rustfmt::skip]
const REVIEWED_NOT_SAFE: &[&str] = &[
    // Counters, lists, pops, appends: a repeat applies them twice.
    "append", "decr", "decrby", "incr", "incrby", "incrbyfloat", "hincrby", "hincrbyfloat",
    "zincrby", "linsert", "lpush", "lpushx", "rpush", "rpushx", "lpop", "rpop", "lmove",
    "rpoplpush", "lmpop", "lrem", "ltrim", "spop", "zpopmax", "zpopmin", "zmpop",
    "zremrangebyrank", "xadd", "xtrim", "xclaim", "xautoclaim", "xreadgroup",
    // SORT ... STORE: its BY/GET patterns read keys no spec shows, maybe the destination.
    "sort",
    // Blocking pops.
    "blmove", "blmpop", "blpop", "brpop", "brpoplpush", "bzmpop", "bzpopmax", "bzpopmin",
    // The reply is the old value, or whether a condition let it apply.
    "getset", "getdel", "hgetdel", "setbit", "bitfield", "setnx", "msetnx", "hsetnx",
    "delifeq", "renamenx", "move", "smove",
    // Moves and creations: a repeat finds the source gone or the target taken
    // (and SWAPDB twice undoes itself).
    "rename", "swapdb", "restore", "restore-asking", "migrate", "xgroup|create",
    // Relative expiry: a repeat restarts the clock.
    "expire", "pexpire", "setex", "psetex", "hexpire", "hpexpire",
    // Whole-database or library changes, and debugging.
    "flushall", "flushdb", "cluster|flushslot", "function|delete", "function|flush",
    "function|load", "function|restore", "pfdebug", "pfselftest", "debug",
    // Scripts, transactions, pub/sub, waiting.
    "eval", "evalsha", "fcall", "exec", "multi", "discard", "watch", "unwatch", "publish",
    "spublish", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe",
    "sunsubscribe", "wait", "waitaof", "function|kill", "script|kill", "script|flush",
    "script|debug",
    // Connection state that changes what follows, and the connection's end.
    "client|caching", "client|capa", "client|import-source", "client|reply",
    "client|tracking", "quit", "reset", "monitor",
    // Administration, replication, cluster topology.
    "acl|deluser", "acl|load", "acl|save", "acl|setuser", "bgrewriteaof", "bgsave", "save",
    "shutdown", "failover", "replicaof", "slaveof", "psync", "sync", "replconf",
    "client|kill", "client|pause", "client|unpause", "client|unblock", "config|resetstat",
    "config|rewrite", "commandlog|reset", "slowlog|reset", "latency|reset", "memory|purge",
    "module|load", "module|loadex", "module|unload", "cluster|addslots",
    "cluster|addslotsrange", "cluster|bumpepoch", "cluster|cancelslotmigrations",
    "cluster|delslots", "cluster|delslotsrange", "cluster|failover", "cluster|flushslots",
    "cluster|forget", "cluster|meet", "cluster|migrateslots", "cluster|replicate",
    "cluster|reset", "cluster|saveconfig", "cluster|set-config-epoch", "cluster|setslot",
    "cluster|syncslots",
    // Containers alone: the subcommand decides (alone they are an arity error).
    "acl", "client", "cluster", "commandlog", "config", "function", "latency", "memory",
    "module", "object", "pubsub", "script", "slowlog", "xgroup", "xinfo",
];

#[test]
fn table_is_sorted_lowercase_and_complete() {
    let table = all();
    assert!(table.windows(2).all(|w| w[0].name < w[1].name));
    assert!(
        table
            .iter()
            .all(|c| !c.name.bytes().any(|b| b.is_ascii_uppercase()))
    );
    let subs = table.iter().filter(|c| c.name.contains('|')).count();
    assert_eq!((table.len() - subs, subs), (257, 142));
    assert_eq!(SERVER_VERSION, "9.1.2");
}

#[test]
fn lookup_any_case_and_subcommands() {
    assert_eq!(lookup(b"get").unwrap().name, "get");
    assert_eq!(lookup(b"GeT").unwrap().name, "get");
    assert_eq!(lookup(b"CLIENT|Kill").unwrap().name, "client|kill");
    assert!(lookup(b"nosuchcommand").is_none());
    assert!(lookup(b"").is_none());
    for (words, name) in [
        ("client KILL ID 1", "client|kill"),
        ("CONFIG get maxmemory", "config|get"),
        ("xinfo STREAM s", "xinfo|stream"),
        ("OBJECT encoding k", "object|encoding"),
        ("command", "command"),
        ("CLIENT nosuchsub", "client"),
        ("GET client", "get"),
    ] {
        assert_eq!(lookup_cmd(&cmd(words)).unwrap().name, name, "{words}");
    }
    assert!(lookup_cmd(&cmd("MYMODULE.DO x")).is_none());
    for info in all() {
        assert_eq!(lookup(info.name.to_uppercase().as_bytes()), Some(info));
    }
}

#[test]
fn flags_groups_and_arity() {
    use CommandFlags as F;
    let get = lookup(b"get").unwrap();
    assert!(get.flags.contains(F::READONLY.union(F::FAST)));
    assert_eq!((get.arity, get.group), (2, "string"));
    let set = lookup(b"set").unwrap();
    assert!(set.flags.contains(F::WRITE.union(F::DENYOOM)));
    assert!(!set.flags.contains(F::READONLY));
    assert!(lookup(b"blpop").unwrap().flags.contains(F::BLOCKING));
    assert!(lookup(b"publish").unwrap().flags.contains(F::PUBSUB));
    assert!(lookup(b"eval").unwrap().flags.contains(F::MOVABLEKEYS));
    assert!(lookup(b"client|kill").unwrap().flags.contains(F::ADMIN));
    assert_eq!(lookup(b"client|kill").unwrap().group, "connection");
    assert_eq!(format!("{:?}", get.flags), r#"{"readonly", "fast"}"#);
}

#[test]
fn policies_from_tips() {
    let p = |n: &[u8]| {
        let c = lookup(n).unwrap();
        (c.request_policy, c.response_policy)
    };
    use RequestPolicy as Q;
    use ResponsePolicy as S;
    assert_eq!(p(b"dbsize"), (Some(Q::AllShards), Some(S::AggSum)));
    assert_eq!(p(b"keys"), (Some(Q::AllShards), None));
    assert_eq!(p(b"mset"), (Some(Q::MultiShard), Some(S::AllSucceeded)));
    assert_eq!(
        p(b"script|flush"),
        (Some(Q::AllNodes), Some(S::AllSucceeded))
    );
    assert_eq!(
        p(b"script|exists"),
        (Some(Q::AllShards), Some(S::AggLogicalAnd))
    );
    assert_eq!(p(b"get"), (None, None));
    assert!(lookup(b"keys").unwrap().nondeterministic_output_order);
    assert!(lookup(b"randomkey").unwrap().nondeterministic_output);
}

#[test]
fn key_extraction() {
    assert_eq!(keys_of("GET k"), ["k"]);
    assert_eq!(keys_of("MSET a 1 b 2 c 3"), ["a", "b", "c"]);
    assert_eq!(keys_of("MGET a b c"), ["a", "b", "c"]);
    assert_eq!(keys_of("DEL a b"), ["a", "b"]);
    assert_eq!(keys_of("EVAL script 2 k1 k2 arg"), ["k1", "k2"]);
    assert_eq!(keys_of("EVAL script 0 arg"), Vec::<String>::new());
    assert_eq!(
        keys_of("ZUNIONSTORE dest 2 a b WEIGHTS 1 2"),
        ["dest", "a", "b"]
    );
    assert_eq!(keys_of("XREAD COUNT 2 STREAMS s1 s2 0 0"), ["s1", "s2"]);
    assert_eq!(keys_of("xread streams s1 0"), ["s1"]);
    let migrate = Cmd::new("MIGRATE").args(["h", "6379", "", "0", "5000", "KEYS", "k1", "k2"]);
    assert_eq!(keys(&migrate).collect::<Vec<_>>(), [b"k1", b"k2"]);
    assert_eq!(keys_of("MIGRATE host 6379 k 0 5000"), ["k"]);
    assert_eq!(keys_of("OBJECT ENCODING k"), ["k"]);
    assert_eq!(keys_of("CLIENT KILL ID 7"), Vec::<String>::new());
    assert_eq!(keys_of("MSETEX 2 a 1 b 2 EX 10"), ["a", "b"]);
    assert_eq!(keys_of("SORT src BY w_* STORE dst"), ["src"]);
    assert_eq!(keys_of("GEORADIUS src 1 2 3 km STORE dst"), ["src", "dst"]);
    assert_eq!(keys_of("LMPOP 2 a b LEFT"), ["a", "b"]);
    assert_eq!(first_key(&cmd("SET k v")), Some(&b"k"[..]));
    assert_eq!(first_key(&cmd("PING")), None);
    // A shard channel is no key, but routes like one.
    assert_eq!(keys_of("SPUBLISH chan msg"), Vec::<String>::new());
    assert_eq!(first_key(&cmd("SPUBLISH chan msg")), Some(&b"chan"[..]));
    let c = cmd("HSET h f v");
    assert_eq!(key_indices(&c).collect::<Vec<_>>(), [1]);
}

#[test]
fn short_and_odd_arguments_do_not_panic() {
    for words in [
        "GET",
        "MSET a",
        "EVAL s",
        "EVAL s 5 k",
        "EVAL s -1 k",
        "EVAL s x k",
        "EVAL s 99999999999999999999 k",
        "EVAL s 9223372036854775807 k",
        "ZUNIONSTORE d",
        "XREAD STREAMS",
        "XREAD STREAMS s",
        "MIGRATE KEYS",
        "OBJECT",
        "XINFO STREAM",
        "GEORADIUS s STORE",
        "MSETEX 1",
        "LMPOP -3",
    ] {
        let c = cmd(words);
        let _ = keys(&c).count();
        let _ = first_key(&c);
        let _ = repeat_safety(&c);
    }
    assert_eq!(keys_of("EVAL s 5 k"), Vec::<String>::new());
    assert_eq!(keys_of("XREAD STREAMS s"), Vec::<String>::new());
    // Every command with only its name, and with a few junk arguments.
    for info in all() {
        let name = info.name.replace('|', " ");
        for extra in ["", " 1", " x 2 y", " STORE STREAMS KEYS 3 a"] {
            let c = cmd(&format!("{name}{extra}"));
            let _ = keys(&c).count();
            let _ = repeat_safety(&c);
        }
    }
}

#[test]
fn repeat_safety_of_listed_commands() {
    use RepeatSafety::*;
    for (words, class) in [
        ("GET k", ReadOnly),
        ("SET k v", Idempotent),
        ("SET k v XX KEEPTTL", Idempotent),
        ("SET k v EXAT 2000000000", Idempotent),
        ("SET k v GET", NotSafe),
        ("set k v get", NotSafe),
        ("SET k GET", Idempotent), // "GET" is the value here
        ("SET k v NX", NotSafe),
        ("SET k v EX 10", NotSafe),
        ("SET k v PX 10", NotSafe),
        ("SET k v IFEQ old", NotSafe),
        ("ZADD k 1 m", Idempotent),
        ("ZADD k GT CH 1 m", Idempotent),
        ("ZADD k INCR 1 m", NotSafe),
        ("ZADD k 1 INCR", Idempotent), // a member named INCR
        ("GETEX k PERSIST", Idempotent),
        ("GETEX k EX 5", NotSafe),
        ("HGETEX h PXAT 2000000000000 FIELDS 1 f", Idempotent),
        ("HGETEX h PX 5 FIELDS 1 f", NotSafe),
        ("HSETEX h FXX KEEPTTL FIELDS 1 f v", Idempotent),
        ("HSETEX h FNX FIELDS 1 f v", NotSafe),
        ("HSETEX h EX 5 FIELDS 1 f v", NotSafe),
        ("HSETEX h FIELDS 1 EX v", Idempotent),
        ("MSETEX 2 a 1 b 2 XX EXAT 2000000000", Idempotent),
        ("MSETEX 2 a 1 b 2 EX 10", NotSafe),
        ("MSETEX 1 NX v", Idempotent),
        ("MSETEX x a 1", NotSafe),
        ("COPY a b REPLACE", Idempotent),
        ("COPY a b", NotSafe),
        ("SUNIONSTORE d a b", Idempotent),
        ("SUNIONSTORE a a b", NotSafe),
        ("ZUNIONSTORE d 2 a b", Idempotent),
        ("ZUNIONSTORE a 2 a b", NotSafe),
        ("BITOP NOT d s", Idempotent),
        ("BITOP NOT s s", NotSafe),
        ("GEORADIUS s 1 2 3 km", Idempotent),
        ("GEORADIUS s 1 2 3 km STORE s", NotSafe),
        ("INCR k", NotSafe),
        ("LPUSH l x", NotSafe),
        ("XADD s * f v", NotSafe),
        ("EXPIRE k 10", NotSafe),
        ("EXPIREAT k 2000000000", Idempotent),
        ("SETEX k 10 v", NotSafe),
        ("EVAL s 0", NotSafe),
        ("EVAL_RO s 0", ReadOnly),
        ("FCALL f 0", NotSafe),
        ("PUBLISH c m", NotSafe),
        ("BLPOP l 0", NotSafe),
        ("MULTI", NotSafe),
        ("EXEC", NotSafe),
        ("CLIENT KILL ID 1", NotSafe),
        ("CLIENT SETNAME me", Idempotent),
        ("CLIENT LIST", ReadOnly),
        ("FLUSHALL", NotSafe),
        ("SHUTDOWN", NotSafe),
        ("PING", ReadOnly),
        ("XREAD BLOCK 0 STREAMS s $", ReadOnly),
        ("MYMODULE.SET k v", NotSafe),
    ] {
        assert_eq!(repeat_safety(&cmd(words)), class, "{words}");
    }
    // Every listed idempotent write in its plain form.
    for (name, _) in idempotent_writes() {
        let c = cmd(&format!("{} 1 k2 k3", name.replace('|', " ")));
        let expected = if name == "copy" { NotSafe } else { Idempotent };
        assert_eq!(repeat_safety(&c), expected, "{name}");
        assert_eq!(
            lookup(name.as_bytes()).unwrap().repeat,
            Idempotent,
            "{name}"
        );
    }
}

#[test]
fn every_command_is_classified() {
    for info in all() {
        let flags = info.flags;
        let in_idempotent = IDEMPOTENT_WRITES.iter().any(|e| e.0 == info.name);
        let safe = SAFE_WITHOUT_FLAGS.iter().find(|e| e.0 == info.name);
        let reviewed = REVIEWED_NOT_SAFE.contains(&info.name);
        let decisions = [in_idempotent, safe.is_some(), reviewed];
        if flags.contains(CommandFlags::READONLY) {
            assert_eq!(info.repeat, RepeatSafety::ReadOnly, "{}", info.name);
            assert_eq!(decisions, [false; 3], "{} is readonly already", info.name);
            continue;
        }
        assert_eq!(
            decisions.iter().filter(|d| **d).count(),
            1,
            "{} needs exactly one decision: idempotent, safe, or reviewed not safe",
            info.name
        );
        if flags.contains(CommandFlags::WRITE) {
            assert!(
                safe.is_none(),
                "{}: writes go in IDEMPOTENT_WRITES",
                info.name
            );
            let expected = if in_idempotent {
                RepeatSafety::Idempotent
            } else {
                RepeatSafety::NotSafe
            };
            assert_eq!(info.repeat, expected, "{}", info.name);
        } else {
            assert!(!in_idempotent, "{} is not a write", info.name);
            assert_eq!(info.repeat, safe.map_or(RepeatSafety::NotSafe, |s| s.1));
            if safe.is_some() {
                // Safe ones never block; pub/sub ones only inspect channels.
                assert!(!flags.contains(CommandFlags::BLOCKING), "{}", info.name);
                let inspects = info.name.starts_with("pubsub|");
                assert!(
                    !flags.contains(CommandFlags::PUBSUB) || inspects,
                    "{}",
                    info.name
                );
            }
        }
    }
    // Every list entry names a real command, once.
    let mut names: Vec<&str> = IDEMPOTENT_WRITES.iter().map(|e| e.0).collect();
    names.extend(SAFE_WITHOUT_FLAGS.iter().map(|e| e.0));
    names.extend(REVIEWED_NOT_SAFE);
    for name in &names {
        assert!(
            lookup(name.as_bytes()).is_some(),
            "{name} is not in the table"
        );
    }
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a command is listed twice");
}
