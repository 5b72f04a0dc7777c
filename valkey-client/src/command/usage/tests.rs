//! Tests of the connection-use classes against the captured valkey-server
//! 9.1.2 table.

use std::time::Duration;

use super::*;
use crate::command::tests::cmd;
use crate::command::{all, lookup};
use BlockingTimeout::{After, Forever, Unparsed};

fn use_of(words: &str) -> ConnectionUse {
    connection_use(&cmd(words))
}

/// The state command a call names, or a panic saying what it got instead.
fn state_name(words: &str) -> &'static str {
    match use_of(words) {
        ConnectionUse::State(s) => s.name,
        other => panic!("{words}: {other:?}"),
    }
}

fn blocking(words: &str) -> BlockingTimeout {
    match use_of(words) {
        ConnectionUse::Blocking(t) => t,
        other => panic!("{words}: {other:?}"),
    }
}

/// Every refused command, as a call, with its table name.
#[rustfmt::skip]
const STATE_CALLS: &[(&str, &str)] = &[
    ("subscribe c", "subscribe"), ("psubscribe p*", "psubscribe"),
    ("ssubscribe c", "ssubscribe"), ("unsubscribe", "unsubscribe"),
    ("punsubscribe", "punsubscribe"), ("sunsubscribe c", "sunsubscribe"),
    ("multi", "multi"), ("exec", "exec"), ("discard", "discard"), ("watch k", "watch"),
    ("unwatch", "unwatch"), ("select 1", "select"), ("client reply off", "client|reply"),
    ("monitor", "monitor"), ("reset", "reset"), ("hello 3", "hello"), ("auth pw", "auth"),
    ("quit", "quit"), ("readonly", "readonly"), ("readwrite", "readwrite"),
    ("client tracking on", "client|tracking"), ("client setname me", "client|setname"),
    ("client setinfo lib-name x", "client|setinfo"), ("client no-evict on", "client|no-evict"),
    ("client no-touch on", "client|no-touch"), ("client caching yes", "client|caching"),
    ("client capa redirect", "client|capa"), ("client import-source on", "client|import-source"),
    ("sync", "sync"), ("psync id 0", "psync"), ("replconf listening-port 1", "replconf"),
    ("asking", "asking"), ("script debug yes", "script|debug"),
];

#[test]
fn state_commands_in_any_case() {
    for &(words, name) in STATE_CALLS {
        assert_eq!(state_name(words), name, "{words}");
        assert_eq!(state_name(&words.to_uppercase()), name, "{words}");
        let state = state_commands().iter().find(|s| s.name == name).unwrap();
        assert_eq!(use_of(words), ConnectionUse::State(state));
    }
    assert_eq!(state_commands().len(), STATE_CALLS.len());
    assert_eq!(state_name("Client Reply Skip"), "client|reply");
    let instead = |name| {
        state_commands()
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .instead
    };
    assert!(instead("subscribe").contains("Subscriber"));
    assert!(instead("multi").contains("Transaction"));
    assert!(instead("client|setname").contains("client_name"));
}

#[test]
fn blocking_commands_in_any_case() {
    for words in [
        "blpop l 0",
        "brpop l 0",
        "brpoplpush a b 0",
        "blmove a b left right 0",
        "blmpop 0 1 l left",
        "bzpopmin z 0",
        "bzpopmax z 0",
        "bzmpop 0 1 z min",
        "wait 1 0",
        "waitaof 1 0 0",
        "xread block 0 streams s $",
        "xreadgroup group g c block 0 streams s >",
    ] {
        assert_eq!(blocking(words), Forever, "{words}");
        assert_eq!(blocking(&words.to_uppercase()), Forever, "{words}");
    }
}

#[test]
fn shared_commands() {
    for words in [
        "PUBLISH c m",
        "SPUBLISH c m",
        "PUBSUB CHANNELS",
        "pubsub numsub c",
        "GET k",
        "get k",
        "Get k",
        "SET k v",
        "CLIENT ID",
        "CLIENT KILL ID 1",
        "CLIENT LIST",
        "CLIENT INFO",
        "CLIENT",
        "CLIENT nosuchsub",
        "PING",
        "ECHO x",
        "SCRIPT LOAD s",
        "XREAD STREAMS s 0",
        "XREAD COUNT 1 STREAMS s 0",
        "XREAD STREAMS block 0", // a stream named "block"
        "XREADGROUP GROUP block block STREAMS s >",
        "XREADGROUP GROUP g c COUNT 1 NOACK STREAMS s >",
        "XREADGROUP GROUP", // no BLOCK: the server's syntax error, not a wait
        "SETBIT k 1 1",     // passes the filter, then looked up
        "MYMODULE.DO x",
        "",
    ] {
        assert_eq!(use_of(words), ConnectionUse::Shared, "{words}");
    }
}

#[test]
fn blocking_timeouts() {
    let ms = |n| After(Duration::from_millis(n));
    for (words, timeout) in [
        ("XREAD COUNT 1 BLOCK 0 STREAMS s $", Forever),
        ("XREADGROUP GROUP g c BLOCK 1500 STREAMS s >", ms(1500)),
        (
            "XREADGROUP GROUP block c COUNT 5 BLOCK 20 STREAMS s >",
            ms(20),
        ),
        ("BLPOP a b 2.5", After(Duration::from_secs_f64(2.5))),
        ("BLPOP a 0", Forever),
        ("BLPOP a 0.0", Forever),
        ("BLPOP a 0.0001", ms(1)), // the server rounds up to a millisecond
        ("BLPOP a -0.0001", Forever), // ... and so to -0 here, which is 0
        ("BLPOP a 1e1", ms(10_000)),
        ("BRPOP a 3", ms(3000)),
        ("BZPOPMAX z .5", ms(500)),
        ("BRPOPLPUSH a b 1", ms(1000)),
        ("BLMOVE a b LEFT RIGHT 0", Forever),
        ("BLMPOP 0 2 a b LEFT", Forever),
        ("BZMPOP 1.5 1 z MIN COUNT 2", ms(1500)),
        ("WAIT 1 100", ms(100)),
        ("WAIT 1 0", Forever),
        ("WAITAOF 1 0 250", ms(250)),
        // Whatever the server rejects.
        ("BLPOP a", Unparsed),
        ("BLPOP a x", Unparsed),
        ("BLPOP", Unparsed),
        ("BLPOP a -1", Unparsed),
        ("BLPOP a nan", Unparsed),
        ("BLPOP a inf", Unparsed),
        ("BLPOP a 1e400", Unparsed),
        ("BLPOP a 1e300", Unparsed),
        ("BLPOP a ", Unparsed),
        ("BLMPOP x 1 a LEFT", Unparsed),
        ("BLMPOP", Unparsed),
        ("WAIT 1 1.5", Unparsed),
        ("WAIT 1 -5", Unparsed),
        ("WAIT 1 +5", Unparsed),
        ("WAIT 1 007", Unparsed),
        ("WAIT 1 99999999999999999999", Unparsed),
        ("WAIT", Unparsed),
        ("XREAD BLOCK", Unparsed),
        ("XREAD BLOCK x STREAMS s 0", Unparsed),
    ] {
        assert_eq!(blocking(words), timeout, "{words}");
    }
    let raw = Cmd::new("BLPOP").arg("k").arg(&[0xffu8, 0xfe][..]);
    assert_eq!(connection_use(&raw), ConnectionUse::Blocking(Unparsed));
}

#[test]
fn odd_arguments_do_not_panic() {
    for info in all() {
        let name = info.name.replace('|', " ");
        for extra in [
            "",
            " 1",
            " BLOCK",
            " GROUP",
            " COUNT",
            " x -1 nan",
            " BLOCK 0 GROUP a",
        ] {
            let _ = use_of(&format!("{name}{extra}"));
        }
    }
    let _ = connection_use(&Cmd::new("\u{e9}t\u{e9}"));
    let _ = connection_use(&Cmd::new(&"x".repeat(100)));
}

/// The common commands never reach the table search.
#[test]
fn common_commands_skip_the_lookup() {
    for name in [
        "get",
        "set",
        "GET",
        "SET",
        "hset",
        "hget",
        "hgetall",
        "hdel",
        "incr",
        "incrby",
        "decr",
        "del",
        "unlink",
        "mget",
        "mset",
        "exists",
        "expire",
        "ttl",
        "lpush",
        "rpush",
        "lpop",
        "rpop",
        "lrange",
        "sadd",
        "srem",
        "smembers",
        "sismember",
        "zadd",
        "zrange",
        "zscore",
        "zrem",
        "ping",
        "echo",
        "publish",
        "eval",
        "evalsha",
        "fcall",
        "xadd",
        "xack",
        "xrange",
        "scan",
        "setex",
        "getex",
        "append",
        "type",
        "info",
    ] {
        assert!(!may_not_be_shared(name.as_bytes()), "{name}");
    }
}

/// Of the command names that are always `Shared`, only a couple pass the
/// filter (`setbit`, `renamenx` with the 9.1.2 table).
#[test]
fn few_shared_names_pass_the_filter() {
    let sometimes_not_shared: Vec<&[u8]> = CANDIDATES.iter().map(|c| c.name).collect();
    let passing: Vec<&str> = all()
        .iter()
        .filter(|i| !i.name.contains('|'))
        .filter(|i| !sometimes_not_shared.contains(&i.name.as_bytes()))
        .filter(|i| may_not_be_shared(i.name.as_bytes()))
        .map(|i| i.name)
        .collect();
    assert!(passing.len() <= 4, "{passing:?}");
}

/// The filter may let a `Shared` name through, never stop another one: for
/// every entry that is not `Shared`, its container name passes in any case.
#[test]
fn filter_has_no_false_negatives() {
    let mut passed = 0;
    for info in all().iter().filter(|i| not_shared(i)) {
        let name = std::str::from_utf8(split_name(info.name).0).unwrap();
        let mixed: String = name
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        for spelling in [name.to_string(), name.to_uppercase(), mixed] {
            assert!(may_not_be_shared(spelling.as_bytes()), "{spelling}");
            passed += 1;
        }
    }
    assert!(passed > 0);
    // The exact match sees the same entries, and only them.
    let blocking = all()
        .iter()
        .filter(|i| i.flags.contains(CommandFlags::BLOCKING))
        .count();
    assert_eq!(CANDIDATES.len(), blocking + state_commands().len());
    for c in &CANDIDATES {
        let mut name = c.name.to_vec();
        if !c.sub.is_empty() {
            name.push(b'|');
            name.extend(c.sub);
        }
        let info = lookup(&name).unwrap();
        let class = match c.class {
            Class::Blocking(at) => {
                assert_eq!(at, timeout_at(info.name));
                info.flags.contains(CommandFlags::BLOCKING)
            }
            Class::State(i) => state_commands()[i].name == info.name,
        };
        assert!(class, "{}", info.name);
    }
    // And some filter keys: empty names pass nothing, long names share a row.
    assert!(!may_not_be_shared(b""));
    assert_eq!(filter_key(&[b'a'; 40]).0, 31);
}

/// Every entry, called with a plain timeout or a `BLOCK 0` option, gets the
/// class its flags and the list give it, through the filter.
#[test]
fn every_entry_classifies_through_the_filter() {
    for info in all() {
        let at = TIMEOUTS.iter().find(|t| t.0 == info.name).map(|t| t.1);
        let extra = match at {
            Some(TimeoutAt::BlockOption) => " BLOCK 0 STREAMS s $",
            _ => " 0 0 0",
        };
        let words = format!("{}{extra}", info.name.replace('|', " "));
        let expected = if info.flags.contains(CommandFlags::BLOCKING) {
            ConnectionUse::Blocking(Forever)
        } else if let Some(state) = state_commands().iter().find(|s| s.name == info.name) {
            ConnectionUse::State(state)
        } else {
            ConnectionUse::Shared
        };
        assert_eq!(use_of(&words), expected, "{words}");
        assert_eq!(use_of(&words.to_uppercase()), expected, "{words}");
    }
}

#[test]
fn table_flags_and_lists_agree() {
    use CommandFlags as F;
    let is_state = |name: &str| state_commands().iter().any(|s| s.name == name);
    for info in all() {
        let blocking = info.flags.contains(F::BLOCKING);
        // The blocking flag, and only it, has a timeout position.
        assert_eq!(
            blocking,
            TIMEOUTS.iter().any(|t| t.0 == info.name),
            "{}",
            info.name
        );
        if info.flags.contains(F::PUBSUB.union(F::NOSCRIPT)) || info.group == "transactions" {
            assert!(is_state(info.name), "{}", info.name);
            // Found by the flags: the hand-written list need not say it.
            assert!(
                !STATE_WITHOUT_FLAGS.iter().any(|s| s.0 == info.name),
                "{}",
                info.name
            );
        }
        assert!(!(blocking && is_state(info.name)), "{}", info.name);
    }
    // PUBLISH and PUBSUB * are pub/sub without noscript: shared.
    for name in ["publish", "spublish", "pubsub|channels", "pubsub|numsub"] {
        assert!(!is_state(name), "{name}");
    }
    // Every listed name is in the table, once.
    let mut names: Vec<&str> = STATE_WITHOUT_FLAGS.iter().map(|s| s.0).collect();
    for name in &names {
        assert!(
            lookup(name.as_bytes()).is_some(),
            "{name} is not in the table"
        );
    }
    names.extend(TIMEOUTS.iter().map(|t| t.0));
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a command is listed twice");
    // The refused list is sorted (binary search) and says why and what instead.
    let states = state_commands();
    assert!(states.windows(2).all(|w| w[0].name < w[1].name));
    assert!(
        states
            .iter()
            .all(|s| !s.why.is_empty() && !s.instead.is_empty())
    );
}

/// `docs/shared-connection.md` shows every refused command, its reason and
/// what to use instead.
#[test]
fn the_doc_lists_every_state_command() {
    let doc = include_str!("../../../../docs/shared-connection.md");
    let one_line = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    for state in state_commands() {
        let shown = format!("`{}`", state.name.replace('|', " ").to_uppercase());
        assert!(doc.contains(&shown), "{shown} is missing from the doc");
        for text in [state.why, state.instead] {
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(one_line.contains(&text), "{}: {text:?}", state.name);
        }
    }
}
