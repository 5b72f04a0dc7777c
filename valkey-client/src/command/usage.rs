//! Connection use: our own class, not the server's. The client multiplexes
//! many callers onto one shared connection; [`connection_use`] says whether a
//! command may ride on it.
//!
//! - [`ConnectionUse::Shared`]: any connection. Every command not named below,
//!   and every unknown one (modules, newer servers).
//! - [`ConnectionUse::Blocking`]: the table's `blocking` flag. The command
//!   holds its connection until data arrives or its own timeout passes, which
//!   would stall every caller behind it: it needs a dedicated connection, and
//!   a response timeout longer than [`BlockingTimeout`]. `XREAD` and
//!   `XREADGROUP` block only with a `BLOCK ms` option; without it they are
//!   `Shared`.
//! - [`ConnectionUse::State`]: the command changes or depends on the state of
//!   its connection, so other callers would see the effect (a `SELECT`ed
//!   database, a `MULTI` queueing their commands, replies switched off). It is
//!   refused on the shared connection; [`StateCommand::instead`] says what to
//!   use. The flags find two families: `pubsub` with `noscript` (the
//!   subscribe commands; `PUBLISH` and `PUBSUB *` lack `noscript`) and the
//!   `transactions` group. The rest are listed by hand in
//!   `STATE_WITHOUT_FLAGS`, with a reason each. [`state_commands`] is the
//!   whole refused list, as `docs/shared-connection.md` shows it.
//!
//! `connection_use` runs for every command of every request, so the common
//! case does not search the table: a filter built at compile time lets
//! through only names that look like a non-`Shared` one (about 50
//! instructions for `GET`), and only those are matched against the few
//! dozen entries that are not `Shared`.

use std::time::Duration;

use super::repeat::const_eq;
use super::table_generated::COMMANDS;
use super::{CommandFlags, CommandInfo};
use crate::Cmd;
use crate::error::{Error, ErrorKind};

/// How a command may use a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionUse {
    /// Any connection, the shared one included.
    Shared,
    /// Holds its connection until data arrives or its own timeout passes: a
    /// dedicated connection.
    Blocking(BlockingTimeout),
    /// Changes or depends on the state of its connection: refused on the
    /// shared connection.
    State(&'static StateCommand),
}

/// A blocking command's own timeout argument, as the server reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingTimeout {
    /// `0`: waits until data arrives.
    Forever,
    /// Gives up after this long. Whole milliseconds: the server rounds a
    /// timeout in seconds up to the next millisecond.
    After(Duration),
    /// Missing, negative or not a number: the server will reject the command.
    Unparsed,
}

/// A command refused on the shared connection, why, and what to use instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateCommand {
    /// The table's name: lowercase, a subcommand as `container|sub`
    /// (`subscribe`, `client|reply`).
    pub name: &'static str,
    /// What it does to its connection that the other callers would see.
    pub why: &'static str,
    /// The API to use instead, in one sentence.
    pub instead: &'static str,
}

impl StateCommand {
    /// The error for this command sent on a shared connection: kind
    /// [`ErrorKind::StatefulCommand`], naming the command and what to use
    /// instead.
    pub fn refusal(&self) -> Error {
        Error::new(
            ErrorKind::StatefulCommand,
            format!(
                "{} changes the state of its connection; {}",
                self.name.replace('|', " ").to_ascii_uppercase(),
                self.instead
            ),
        )
    }
}

const SUBSCRIBER: &str = "use a Subscriber (pub/sub API) on its own connection";
const TRANSACTION: &str = "use a Transaction or watch() (transaction API)";
const DEDICATED: &str = "use a dedicated Connection";
const PUBSUB_WHY: &str = "subscriptions belong to the connection: messages are pushed to it, \
                          and under RESP2 it takes only pub/sub commands while subscribed";
const TRANSACTION_WHY: &str = "a transaction belongs to the connection: after MULTI it queues \
                               every caller's commands until EXEC, and WATCH arms its next EXEC";

/// The state commands the flags do not find: `(name, why, instead)`.
/// Subcommands not listed (`CLIENT ID`, `CLIENT KILL`, `CLIENT LIST`, ...)
/// only read the connection or act on the server: `Shared`.
#[rustfmt::skip]
const STATE_WITHOUT_FLAGS: &[(&str, &str, &str)] = &[
    // Who the connection is: the handshake sets it, once, for every caller.
    ("auth", "changes the user every caller of the connection acts as",
        "set the credentials with the builder (username, password)"),
    ("hello", "changes the protocol, user and name of the connection for every caller",
        "set them with the builder (protocol, username, password, client_name)"),
    ("select", "changes the database of every caller of the connection",
        "use Valkey::select(db) or the `db` option, which opens a client with its own connections"),
    ("client|setname", "renames the connection every caller shares",
        "set it with the builder (client_name)"),
    ("client|setinfo", "overwrites the library name and version the handshake sent",
        "leave it to the handshake (ConnectionConfig::set_lib_info)"),
    // Modes that change how the server treats the connection's later commands.
    ("client|reply", "OFF and SKIP drop replies, so later callers get another's reply or none",
        DEDICATED),
    ("client|tracking", "tracking is per connection, and its invalidations are pushed to it",
        DEDICATED),
    ("client|caching", "applies to the connection's next command, whoever sent it", DEDICATED),
    ("client|capa", "declares what the connection understands (redirect replies)", DEDICATED),
    ("client|no-evict", "exempts the connection from client eviction, for every caller",
        DEDICATED),
    ("client|no-touch", "makes every caller's reads leave the access time of keys alone",
        DEDICATED),
    ("client|import-source", "marks the connection as an import source, for every caller",
        DEDICATED),
    ("script|debug", "makes the connection's next EVAL, whoever sent it, a debugging session",
        DEDICATED),
    ("asking", "lets the connection's next command, whoever sent it, into an importing slot",
        DEDICATED),
    ("readonly", "lets every caller of the connection read from a cluster replica", DEDICATED),
    ("readwrite", "undoes READONLY for every caller of the connection", DEDICATED),
    // The connection stops taking requests, or ends.
    ("monitor", "turns the connection into a stream of every command the server runs",
        DEDICATED),
    ("sync", "turns the connection into a replication stream", DEDICATED),
    ("psync", "turns the connection into a replication stream", DEDICATED),
    ("replconf", "configures the replication link of a replica's connection", DEDICATED),
    ("reset", "resets database, user, name, transaction, subscriptions and tracking \
               of every caller of the connection", DEDICATED),
    ("quit", "closes the connection of every caller", "drop the client instead"),
];

/// Why a table entry is a state command and what to use instead; `None`: it
/// is not one. The flags first, then the list.
const fn state_reason(info: &CommandInfo) -> Option<(&'static str, &'static str)> {
    if info
        .flags
        .contains(CommandFlags::PUBSUB.union(CommandFlags::NOSCRIPT))
    {
        return Some((PUBSUB_WHY, SUBSCRIBER));
    }
    if const_eq(info.group, "transactions") {
        return Some((TRANSACTION_WHY, TRANSACTION));
    }
    let mut i = 0;
    while i < STATE_WITHOUT_FLAGS.len() {
        let (name, why, instead) = STATE_WITHOUT_FLAGS[i];
        if const_eq(name, info.name) {
            return Some((why, instead));
        }
        i += 1;
    }
    None
}

/// Whether a table entry may be anything but `Shared`.
const fn not_shared(info: &CommandInfo) -> bool {
    info.flags.contains(CommandFlags::BLOCKING) || state_reason(info).is_some()
}

const fn state_count() -> usize {
    let (mut i, mut n) = (0, 0);
    while i < COMMANDS.len() {
        n += state_reason(&COMMANDS[i]).is_some() as usize;
        i += 1;
    }
    n
}

/// Every state command of the table, in table order (sorted by name); built
/// at compile time, so it is exactly what `connection_use` refuses.
static STATE_COMMANDS: [StateCommand; state_count()] = {
    let empty = StateCommand {
        name: "",
        why: "",
        instead: "",
    };
    let mut out = [empty; state_count()];
    let (mut i, mut n) = (0, 0);
    while i < COMMANDS.len() {
        if let Some((why, instead)) = state_reason(&COMMANDS[i]) {
            let name = COMMANDS[i].name;
            out[n] = StateCommand { name, why, instead };
            n += 1;
        }
        i += 1;
    }
    out
};

/// Every command refused on the shared connection, sorted by name: the
/// subscribe family and the transaction commands (found by their flags and
/// group) and the hand-written list.
pub fn state_commands() -> &'static [StateCommand] {
    &STATE_COMMANDS
}

/// The filter's key of a command name: its row (the length, 31 for any
/// longer name) and one bit each for its first, second and last byte. `& 31`
/// folds ASCII case (`'G'` and `'g'` share a bit). An empty name gets no bit,
/// so it passes nothing.
const fn filter_key(name: &[u8]) -> (usize, [u32; 3]) {
    let len = name.len();
    if len == 0 {
        return (0, [0; 3]);
    }
    let second = if len > 1 { name[1] } else { name[0] };
    let row = if len < 31 { len } else { 31 };
    (row, [bit(name[0]), bit(second), bit(name[len - 1])])
}

const fn bit(byte: u8) -> u32 {
    1 << (byte & 31)
}

/// A table name split as a call spells it: `client|reply` is `client` then
/// `reply`; a plain command has an empty subcommand.
const fn split_name(name: &'static str) -> (&'static [u8], &'static [u8]) {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b'|' {
        i += 1;
    }
    let (container, rest) = bytes.split_at(i);
    match rest.split_first() {
        Some((_, sub)) => (container, sub),
        None => (container, rest),
    }
}

/// Per name length, the first/second/last-byte bits of every container name
/// that is not `Shared`. A name passes when all three of its bits are set in
/// its row: no false negative by construction. Of the ~260 command names,
/// besides those that are sometimes not `Shared` (`CLIENT ...`, `XREAD`),
/// only `setbit` and `renamenx` pass and pay the exact match for nothing.
static FILTER: [[u32; 3]; 32] = {
    let mut rows = [[0u32; 3]; 32];
    let mut i = 0;
    while i < COMMANDS.len() {
        if not_shared(&COMMANDS[i]) {
            let (row, bits) = filter_key(split_name(COMMANDS[i].name).0);
            rows[row][0] |= bits[0];
            rows[row][1] |= bits[1];
            rows[row][2] |= bits[2];
        }
        i += 1;
    }
    rows
};

/// Whether a command name may be anything but `Shared`: false means `Shared`.
#[inline]
pub(crate) fn may_not_be_shared(name: &[u8]) -> bool {
    let (row, bits) = filter_key(name);
    let masks = &FILTER[row];
    bits[0] & masks[0] != 0 && bits[1] & masks[1] != 0 && bits[2] & masks[2] != 0
}

/// A table entry that is not `Shared`, its name split by [`split_name`] and
/// its class decided at compile time.
#[derive(Clone, Copy)]
struct Candidate {
    name: &'static [u8],
    sub: &'static [u8],
    class: Class,
}

/// The class of a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The `blocking` flag; where its timeout is, if [`TIMEOUTS`] says.
    Blocking(Option<TimeoutAt>),
    /// Refused: `STATE_COMMANDS[i]`.
    State(usize),
}

const fn candidate_count() -> usize {
    let (mut i, mut n) = (0, 0);
    while i < COMMANDS.len() {
        n += not_shared(&COMMANDS[i]) as usize;
        i += 1;
    }
    n
}

/// Every table entry that is not `Shared` (a few dozen): after a filter hit
/// the call is matched against these, not searched for in the whole table.
static CANDIDATES: [Candidate; candidate_count()] = {
    let class = Class::State(0);
    let (name, sub) = (&[] as &[u8], &[] as &[u8]);
    let mut out = [Candidate { name, sub, class }; candidate_count()];
    // Both walk the table in order, so the n-th state entry is STATE_COMMANDS[n].
    let (mut i, mut n, mut state) = (0, 0, 0);
    while i < COMMANDS.len() {
        let info = &COMMANDS[i];
        let is_state = state_reason(info).is_some();
        if not_shared(info) {
            let class = if info.flags.contains(CommandFlags::BLOCKING) {
                Class::Blocking(timeout_at(info.name))
            } else {
                Class::State(state)
            };
            let (name, sub) = split_name(info.name);
            out[n] = Candidate { name, sub, class };
            n += 1;
        }
        state += is_state as usize;
        i += 1;
    }
    out
};

/// How this call may use a connection: `Shared`, `Blocking` with its own
/// timeout, or a refused `State` command. No allocation; only names the
/// filter lets through are matched exactly.
#[inline]
pub fn connection_use(cmd: &Cmd) -> ConnectionUse {
    if may_not_be_shared(cmd.name_bytes()) {
        classify(cmd)
    } else {
        ConnectionUse::Shared
    }
}

/// The exact class, after a filter hit. As in `lookup_cmd`, a subcommand
/// entry (`client|reply`) wins over its container's; a command that matches
/// no candidate (`CLIENT ID`, `SETBIT`) is `Shared`.
#[inline(never)]
fn classify(cmd: &Cmd) -> ConnectionUse {
    let mut args = cmd.arg_iter();
    let name = args.next().unwrap_or_default();
    let sub = args.next().unwrap_or_default();
    let mut plain = None;
    for c in &CANDIDATES {
        if !c.name.eq_ignore_ascii_case(name) {
            continue;
        }
        if c.sub.is_empty() {
            plain = Some(c.class);
        } else if c.sub.eq_ignore_ascii_case(sub) {
            return call_use(c.class, cmd);
        }
    }
    plain.map_or(ConnectionUse::Shared, |class| call_use(class, cmd))
}

/// How a call of a candidate uses its connection; `XREAD` without `BLOCK`
/// is `Shared` after all.
fn call_use(class: Class, cmd: &Cmd) -> ConnectionUse {
    match class {
        Class::Blocking(at) => {
            blocking_timeout(at, cmd).map_or(ConnectionUse::Shared, ConnectionUse::Blocking)
        }
        Class::State(i) => STATE_COMMANDS
            .get(i)
            .map_or(ConnectionUse::Shared, ConnectionUse::State),
    }
}

/// Where a blocking command takes its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutAt {
    /// The last argument, in seconds (a float allowed).
    LastSeconds,
    /// The first argument after the name, in seconds (a float allowed).
    FirstSeconds,
    /// The last argument, in whole milliseconds.
    LastMillis,
    /// After a `BLOCK` option, in whole milliseconds; no `BLOCK`, no blocking.
    BlockOption,
}

/// Every command with the `blocking` flag and where its timeout is. One the
/// server adds and this list lacks is still `Blocking`, its timeout `Unparsed`.
#[rustfmt::skip]
const TIMEOUTS: &[(&str, TimeoutAt)] = {
    use TimeoutAt::*;
    &[
        ("blpop", LastSeconds), ("brpop", LastSeconds), ("bzpopmin", LastSeconds),
        ("bzpopmax", LastSeconds), ("brpoplpush", LastSeconds), ("blmove", LastSeconds),
        ("blmpop", FirstSeconds), ("bzmpop", FirstSeconds),
        ("wait", LastMillis), ("waitaof", LastMillis),
        ("xread", BlockOption), ("xreadgroup", BlockOption),
    ]
};

const fn timeout_at(name: &str) -> Option<TimeoutAt> {
    let mut i = 0;
    while i < TIMEOUTS.len() {
        if const_eq(TIMEOUTS[i].0, name) {
            return Some(TIMEOUTS[i].1);
        }
        i += 1;
    }
    None
}

/// The timeout of a blocking command; `None` when this call does not block
/// (`XREAD` without `BLOCK`).
fn blocking_timeout(at: Option<TimeoutAt>, cmd: &Cmd) -> Option<BlockingTimeout> {
    let Some(at) = at else {
        return Some(BlockingTimeout::Unparsed);
    };
    // The name alone has no last argument.
    let last = || cmd.arg_at(cmd.arg_count().checked_sub(1).filter(|&i| i > 0)?);
    Some(match at {
        TimeoutAt::LastSeconds => seconds(last()),
        TimeoutAt::FirstSeconds => seconds(cmd.arg_at(1)),
        TimeoutAt::LastMillis => millis(last()),
        TimeoutAt::BlockOption => millis(block_option(cmd)?),
    })
}

/// The value after `BLOCK` among the options of `XREAD`/`XREADGROUP`
/// (`Some(None)`: `BLOCK` ends the command); `None` without `BLOCK` before
/// `STREAMS`. Skipping the values of `COUNT` and `GROUP` keeps a group or
/// consumer named "block" from counting, as the server's own parser does.
fn block_option(cmd: &Cmd) -> Option<Option<&[u8]>> {
    let mut args = cmd.arg_iter().skip(1);
    while let Some(arg) = args.next() {
        if arg.eq_ignore_ascii_case(b"BLOCK") {
            return Some(args.next());
        }
        if arg.eq_ignore_ascii_case(b"STREAMS") {
            return None;
        }
        let values = if arg.eq_ignore_ascii_case(b"GROUP") {
            2
        } else {
            usize::from(arg.eq_ignore_ascii_case(b"COUNT"))
        };
        for _ in 0..values {
            args.next();
        }
    }
    None
}

/// A timeout in seconds, as the server reads it: a float, times 1000, rounded
/// up (0.0001 waits 1 ms; only 0 waits forever).
fn seconds(arg: Option<&[u8]>) -> BlockingTimeout {
    let secs = arg.and_then(|a| std::str::from_utf8(a).ok()?.parse::<f64>().ok());
    match secs.map(|s| (s * 1000.0).ceil()) {
        // NaN and infinities fail the range too; a tiny negative rounds up
        // to -0, which the server takes as 0 as well.
        Some(ms) if (0.0..i64::MAX as f64).contains(&ms) => from_millis(ms as u64),
        _ => BlockingTimeout::Unparsed,
    }
}

/// A timeout in whole milliseconds, as the server's integer parser reads it:
/// digits only, no sign (a negative one is refused anyway), no leading zero.
fn millis(arg: Option<&[u8]>) -> BlockingTimeout {
    let ms = arg
        .filter(|a| a.iter().all(u8::is_ascii_digit) && !(a.len() > 1 && a.starts_with(b"0")))
        .and_then(|a| std::str::from_utf8(a).ok()?.parse::<i64>().ok());
    match ms.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) => from_millis(ms),
        None => BlockingTimeout::Unparsed,
    }
}

fn from_millis(ms: u64) -> BlockingTimeout {
    if ms == 0 {
        BlockingTimeout::Forever
    } else {
        BlockingTimeout::After(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests;
