//! Repeat safety: our own class, not the server's. Whether a command may be
//! sent again when an earlier attempt may have reached the server but no reply
//! came (timeout, dropped connection). The retry layer repeats such a command
//! only when it is [`RepeatSafety::ReadOnly`] or [`RepeatSafety::Idempotent`]
//! ("at most once by default", retry-semantics section 3).
//!
//! The rules applied below:
//!
//! - Commands with the server's `readonly` flag are `ReadOnly`.
//! - A write is `Idempotent` when a repeat leaves the same data as one
//!   application. A count in the reply may drop on the repeat (`DEL` says 0,
//!   `SADD` says 0): accepted, the data is what matters.
//! - A write whose reply is the old value (`GETSET`, `SET ... GET`, `SETBIT`,
//!   `BITFIELD`, `GETDEL`), or says whether a condition let it apply (`SETNX`,
//!   `SET ... NX`, `IFEQ`, `DELIFEQ`, `RENAMENX`, `MOVE`, `SMOVE`, `COPY` without
//!   `REPLACE`), is `NotSafe`: the repeat would report the caller's own write
//!   as a lost race, or lose the old value for good.
//! - A relative expiry (`EXPIRE`, `SETEX`, `SET ... EX`, `GETEX ... PX`) is
//!   `NotSafe`: the repeat restarts the clock, so the key lives longer than
//!   asked. The absolute forms (`EXPIREAT`, `EXAT`, `PXAT`, `KEEPTTL`) are fine.
//!   A caller who accepts the later expiry can opt in for the call.
//! - `*STORE` commands that rebuild a destination from sources are `Idempotent`
//!   only while the destination is not also a source (`ZUNIONSTORE a 2 a b`
//!   adds `b` again on each repeat).
//! - Appends, counters, pushes, pops and `XADD` (even with `*`: a repeat adds
//!   a second entry) are `NotSafe`; so are `ZREMRANGEBYRANK`, `LTRIM`, `LREM`
//!   and `XTRIM` (positions and limits: a repeat removes more), `RENAME`,
//!   `MIGRATE`, `RESTORE` (the repeat finds the source gone or the target
//!   taken), `SWAPDB` (twice undoes it) and `SORT` (`STORE` with `BY`/`GET`
//!   patterns may overwrite keys it reads, which no key spec shows).
//! - `FLUSHALL`, `FLUSHDB` and `FUNCTION FLUSH` leave the same empty state,
//!   but a late repeat wipes what other clients wrote since: `NotSafe`.
//! - Commands with neither flag are `NotSafe` unless listed in
//!   [`SAFE_WITHOUT_FLAGS`]: scripts, transactions, pub/sub, blocking,
//!   replication and administration cannot be repeated blindly.
//! - Unknown commands (modules, newer servers) are `NotSafe`.

use super::{CommandFlags, keys, lookup_cmd};
use crate::Cmd;

/// Whether a command may be repeated after an attempt with an unknown outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RepeatSafety {
    /// Changes no data: repeating it is always harmless.
    ReadOnly,
    /// Changes data, but a repeat leaves the same state as one application.
    Idempotent,
    /// A repeat may apply it twice or misreport its outcome.
    NotSafe,
}

/// How a call's arguments can take away the idempotence of a listed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Idempotent whatever the arguments.
    Always,
    /// `SET k v [opts]`: not with `GET`, `NX`, `IFEQ`, `EX` or `PX`.
    SetOptions,
    /// `ZADD k [opts] score member ...`: not with `INCR`.
    ZaddOptions,
    /// `GETEX`/`HGETEX` options before `FIELDS`: not with `EX` or `PX`.
    ExpiryOptions,
    /// `HSETEX` options before `FIELDS`: not with `NX`, `FNX`, `EX` or `PX`.
    HsetexOptions,
    /// `MSETEX n k v ... [opts]`: not with `NX`, `EX` or `PX`.
    MsetexOptions,
    /// `COPY src dst [DB n] [REPLACE]`: only with `REPLACE`.
    CopyReplace,
    /// A store command: only while no key is both destination and source.
    DistinctKeys,
}

/// The write commands we class `Idempotent`, with the argument check that can
/// take it away and the reason. Every other write is `NotSafe`.
#[rustfmt::skip]
pub(super) const IDEMPOTENT_WRITES: &[(&str, Check, &str)] = &[
    ("set", Check::SetOptions, "overwrites the value; options checked"),
    ("mset", Check::Always, "overwrites every value"),
    ("del", Check::Always, "the keys are gone either way"),
    ("unlink", Check::Always, "the keys are gone either way"),
    ("hset", Check::Always, "overwrites the fields"),
    ("hmset", Check::Always, "overwrites the fields"),
    ("hdel", Check::Always, "the fields are gone either way"),
    ("sadd", Check::Always, "set union: adding again changes nothing"),
    ("srem", Check::Always, "the members are gone either way"),
    ("zadd", Check::ZaddOptions, "sets scores (GT/LT/NX/XX too); INCR adds"),
    ("zrem", Check::Always, "the members are gone either way"),
    ("zremrangebyscore", Check::Always, "by value: nothing is left in range"),
    ("zremrangebylex", Check::Always, "by value: nothing is left in range"),
    ("geoadd", Check::Always, "sets positions, like ZADD without INCR"),
    ("lset", Check::Always, "overwrites one index with the same value"),
    ("setrange", Check::Always, "overwrites the same bytes"),
    ("pfadd", Check::Always, "HyperLogLog add is a set union"),
    ("pfmerge", Check::Always, "HyperLogLog union, idempotent even in place"),
    ("expireat", Check::Always, "absolute deadline"),
    ("pexpireat", Check::Always, "absolute deadline"),
    ("persist", Check::Always, "no expiry either way"),
    ("getex", Check::ExpiryOptions, "reads; PERSIST/EXAT/PXAT are absolute"),
    ("hgetex", Check::ExpiryOptions, "reads; PERSIST/EXAT/PXAT are absolute"),
    ("hsetex", Check::HsetexOptions, "overwrites fields; options checked"),
    ("msetex", Check::MsetexOptions, "overwrites values; options checked"),
    ("hpersist", Check::Always, "no field expiry either way"),
    ("hexpireat", Check::Always, "absolute field deadline"),
    ("hpexpireat", Check::Always, "absolute field deadline"),
    ("copy", Check::CopyReplace, "with REPLACE the copy is overwritten"),
    ("xack", Check::Always, "acknowledged either way"),
    ("xdel", Check::Always, "the entries are gone either way"),
    ("xsetid", Check::Always, "sets an absolute last id"),
    ("xgroup|createconsumer", Check::Always, "the consumer exists either way"),
    ("xgroup|delconsumer", Check::Always, "the consumer is gone either way"),
    ("xgroup|destroy", Check::Always, "the group is gone either way"),
    ("xgroup|setid", Check::Always, "sets an absolute last-delivered id"),
    ("sinterstore", Check::DistinctKeys, "rebuilds dest from sources"),
    ("sunionstore", Check::DistinctKeys, "rebuilds dest from sources"),
    ("sdiffstore", Check::DistinctKeys, "rebuilds dest from sources"),
    ("zinterstore", Check::DistinctKeys, "rebuilds dest; SUM in place adds"),
    ("zunionstore", Check::DistinctKeys, "rebuilds dest; SUM in place adds"),
    ("zdiffstore", Check::DistinctKeys, "rebuilds dest from sources"),
    ("zrangestore", Check::DistinctKeys, "rebuilds dest; in place it shrinks"),
    ("geosearchstore", Check::DistinctKeys, "rebuilds dest from the source"),
    ("georadius", Check::DistinctKeys, "a read, or STORE rebuilding dest"),
    ("georadiusbymember", Check::DistinctKeys, "a read, or STORE rebuilding dest"),
    ("bitop", Check::DistinctKeys, "rebuilds dest; NOT/XOR in place flip"),
];

/// Commands with neither `readonly` nor `write` that are safe to repeat: pure
/// reads of server or connection state (`ReadOnly`), and setters of a value
/// that a repeat sets again (`Idempotent`). Every other one is `NotSafe`.
#[rustfmt::skip]
pub(super) const SAFE_WITHOUT_FLAGS: &[(&str, RepeatSafety)] = {
    use RepeatSafety::{Idempotent as I, ReadOnly as R};
    &[
        ("acl|cat", R), ("acl|dryrun", R), ("acl|genpass", R), ("acl|getuser", R),
        ("acl|help", R), ("acl|list", R), ("acl|users", R), ("acl|whoami", R),
        ("client|getname", R), ("client|getredir", R), ("client|help", R),
        ("client|id", R), ("client|info", R), ("client|list", R),
        ("client|trackinginfo", R),
        ("cluster|count-failure-reports", R), ("cluster|countkeysinslot", R),
        ("cluster|getkeysinslot", R), ("cluster|getslotmigrations", R),
        ("cluster|help", R), ("cluster|info", R), ("cluster|keyslot", R),
        ("cluster|links", R), ("cluster|myid", R), ("cluster|myshardid", R),
        ("cluster|nodes", R), ("cluster|replicas", R), ("cluster|shards", R),
        ("cluster|slaves", R), ("cluster|slot-stats", R), ("cluster|slots", R),
        ("command", R), ("command|count", R), ("command|docs", R),
        ("command|getkeys", R), ("command|getkeysandflags", R), ("command|help", R),
        ("command|info", R), ("command|list", R),
        ("commandlog|get", R), ("commandlog|help", R), ("commandlog|len", R),
        ("config|get", R), ("config|help", R), ("echo", R),
        ("function|dump", R), ("function|help", R), ("function|list", R),
        ("function|stats", R), ("info", R), ("lastsave", R),
        ("latency|doctor", R), ("latency|graph", R), ("latency|help", R),
        ("latency|histogram", R), ("latency|history", R), ("latency|latest", R),
        ("memory|doctor", R), ("memory|help", R), ("memory|malloc-stats", R),
        ("memory|stats", R), ("module|help", R), ("module|list", R),
        ("object|help", R), ("ping", R),
        ("pubsub|channels", R), ("pubsub|help", R), ("pubsub|numpat", R),
        ("pubsub|numsub", R), ("pubsub|shardchannels", R), ("pubsub|shardnumsub", R),
        ("role", R), ("script|exists", R), ("script|help", R), ("script|show", R),
        ("slowlog|get", R), ("slowlog|help", R), ("slowlog|len", R), ("time", R),
        ("xgroup|help", R), ("xinfo|help", R),
        // Setters: a repeat sets the same value again.
        ("acl|log", I), // reads, or RESET clears the log again
        ("asking", I), ("auth", I), ("hello", I), ("select", I),
        ("readonly", I), ("readwrite", I),
        ("client|setname", I), ("client|setinfo", I),
        ("client|no-evict", I), ("client|no-touch", I),
        ("config|set", I), // absolute values
        ("script|load", I), // same script, same SHA
    ]
};

/// The class of a command ignoring its arguments; computed at compile time
/// for every entry of the generated table.
pub(super) const fn static_class(name: &str, flags: CommandFlags) -> RepeatSafety {
    if flags.contains(CommandFlags::READONLY) {
        return RepeatSafety::ReadOnly;
    }
    let mut i = 0;
    while i < IDEMPOTENT_WRITES.len() {
        if const_eq(IDEMPOTENT_WRITES[i].0, name) {
            return RepeatSafety::Idempotent;
        }
        i += 1;
    }
    let mut i = 0;
    while i < SAFE_WITHOUT_FLAGS.len() {
        if const_eq(SAFE_WITHOUT_FLAGS[i].0, name) {
            return SAFE_WITHOUT_FLAGS[i].1;
        }
        i += 1;
    }
    RepeatSafety::NotSafe
}

/// String equality usable in constants.
pub(super) const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether this call may be repeated after an attempt with an unknown
/// outcome: the table's class, narrowed by the arguments (`SET k v GET` and
/// `ZADD k INCR 1 m` are `NotSafe`). Unknown commands are `NotSafe`.
pub fn repeat_safety(cmd: &Cmd) -> RepeatSafety {
    let Some(info) = lookup_cmd(cmd) else {
        return RepeatSafety::NotSafe;
    };
    if info.repeat != RepeatSafety::Idempotent {
        return info.repeat;
    }
    let check = IDEMPOTENT_WRITES
        .iter()
        .find(|(name, _, _)| *name == info.name)
        .map_or(Check::Always, |entry| entry.1);
    if check_passes(check, cmd) {
        RepeatSafety::Idempotent
    } else {
        RepeatSafety::NotSafe
    }
}

/// Applies one argument check.
fn check_passes(check: Check, cmd: &Cmd) -> bool {
    let args = || cmd.arg_iter();
    let before_fields = || {
        args()
            .skip(2)
            .take_while(|a| !a.eq_ignore_ascii_case(b"FIELDS"))
    };
    match check {
        Check::Always => true,
        Check::SetOptions => !any_token(args().skip(3), &["GET", "NX", "IFEQ", "EX", "PX"]),
        Check::ZaddOptions => {
            let options = ["NX", "XX", "GT", "LT", "CH", "INCR"];
            let options = args().skip(2).take_while(|a| any_token([*a], &options));
            !any_token(options, &["INCR"])
        }
        Check::ExpiryOptions => !any_token(before_fields(), &["EX", "PX"]),
        Check::HsetexOptions => !any_token(before_fields(), &["NX", "FNX", "EX", "PX"]),
        Check::MsetexOptions => {
            let numkeys = cmd
                .arg_at(1)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok());
            match numkeys.and_then(|n: usize| n.checked_mul(2)?.checked_add(2)) {
                Some(options) => !any_token(args().skip(options), &["NX", "EX", "PX"]),
                None => false,
            }
        }
        Check::CopyReplace => any_token(args().skip(3), &["REPLACE"]),
        Check::DistinctKeys => {
            let mut keys: Vec<&[u8]> = keys(cmd).collect();
            keys.sort_unstable();
            keys.windows(2).all(|w| w[0] != w[1])
        }
    }
}

/// Whether any argument is one of `tokens`, ignoring case.
fn any_token<'a>(args: impl IntoIterator<Item = &'a [u8]>, tokens: &[&str]) -> bool {
    args.into_iter()
        .any(|a| tokens.iter().any(|t| a.eq_ignore_ascii_case(t.as_bytes())))
}

/// Every idempotent write with its reason, for documentation and tests.
pub fn idempotent_writes() -> impl Iterator<Item = (&'static str, &'static str)> {
    IDEMPOTENT_WRITES.iter().map(|(name, _, why)| (*name, *why))
}
