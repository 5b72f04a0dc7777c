//! The command table: for every command and subcommand of the server, its
//! flags, where its keys are, how a cluster routes it, whether a repeat is
//! harmless and whether it may ride on the shared connection. Routing, retry
//! safety and typed methods all read this one table.
//!
//! The table is generated from the real server's `COMMAND INFO` and
//! `COMMAND DOCS` (checked in as `data/commands.json`); see
//! `scripts/regenerate-command-table.sh`. What is ours, not the server's, is
//! the repeat-safety class, decided in `repeat.rs`, and the connection use
//! (shared, blocking, or refused as connection state), decided in `usage.rs`.
//!
//! ```
//! use valkey_client::{Cmd, command};
//! let info = command::lookup(b"get").unwrap();
//! assert!(info.flags.contains(command::CommandFlags::READONLY));
//! let cmd = Cmd::new("MSET").arg("a").arg(1).arg("b").arg(2);
//! assert_eq!(command::keys(&cmd).collect::<Vec<_>>(), [b"a", b"b"]);
//! assert_eq!(command::repeat_safety(&cmd), command::RepeatSafety::Idempotent);
//! assert_eq!(command::connection_use(&cmd), command::ConnectionUse::Shared);
//! ```

mod flags;
mod keys;
mod repeat;
mod table_generated;
#[cfg(test)]
mod tests;
mod usage;

use std::cmp::Ordering;

use crate::Cmd;

pub use flags::{CommandFlags, KeySpecFlags};
pub use keys::{KeyIter, first_key, key_indices, keys};
pub use repeat::{RepeatSafety, idempotent_writes, repeat_safety};
pub use table_generated::SERVER_VERSION;
pub(crate) use usage::may_not_be_shared;
pub use usage::{BlockingTimeout, ConnectionUse, StateCommand, connection_use, state_commands};

/// What the table knows about one command or subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandInfo {
    /// Lowercase name; a subcommand is `container|sub`, e.g. `client|kill`.
    pub name: &'static str,
    /// The server's arity: N means exactly N arguments (name included),
    /// -N means at least N.
    pub arity: i32,
    /// The server's flags (readonly, write, blocking, ...).
    pub flags: CommandFlags,
    /// Where the keys are among the arguments, see [`key_indices`].
    pub key_specs: &'static [KeySpec],
    /// How a cluster client spreads a keyless command (from the command tips);
    /// `None`: to one node, chosen by key (or any node without keys).
    pub request_policy: Option<RequestPolicy>,
    /// How the replies of several nodes combine into one.
    pub response_policy: Option<ResponsePolicy>,
    /// The reply may differ between calls with the same data (e.g. `RANDOMKEY`).
    pub nondeterministic_output: bool,
    /// The order of the reply's elements may differ between calls (e.g. `KEYS`).
    pub nondeterministic_output_order: bool,
    /// Whether repeating it is harmless, ignoring its arguments: the class of
    /// the command's plain form. Some lose it with certain arguments
    /// (`SET ... GET`, `ZADD ... INCR`): decide a real call with [`repeat_safety`].
    pub repeat: RepeatSafety,
    /// The documentation group (`string`, `server`, `cluster`, ...).
    pub group: &'static str,
}

impl CommandInfo {
    /// Builds an entry, classing its repeat safety; used by the generated table.
    #[allow(clippy::too_many_arguments)]
    pub(crate) const fn new(
        name: &'static str,
        arity: i32,
        flags: CommandFlags,
        key_specs: &'static [KeySpec],
        request_policy: Option<RequestPolicy>,
        response_policy: Option<ResponsePolicy>,
        nondeterministic_output: bool,
        nondeterministic_output_order: bool,
        group: &'static str,
    ) -> CommandInfo {
        CommandInfo {
            name,
            arity,
            flags,
            key_specs,
            request_policy,
            response_policy,
            nondeterministic_output,
            nondeterministic_output_order,
            repeat: repeat::static_class(name, flags),
            group,
        }
    }
}

/// One key specification: how to find a group of keys among the arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySpec {
    /// Where the search for the first key starts.
    pub begin_search: BeginSearch,
    /// How the keys follow from there.
    pub find_keys: FindKeys,
    /// How the command accesses these keys.
    pub flags: KeySpecFlags,
}

/// The first step of a key spec: where the first key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeginSearch {
    /// At this argument index (0 is the command name).
    Index(i32),
    /// Right after `keyword`, searched from argument `startfrom` forwards, or
    /// backwards from the end when `startfrom` is negative.
    Keyword {
        /// The keyword, compared case-insensitively.
        keyword: &'static str,
        /// Where the search starts.
        startfrom: i32,
    },
    /// The server cannot say (e.g. `SORT ... STORE`): no keys from this spec.
    Unknown,
}

/// The second step of a key spec: which arguments from the first key are keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindKeys {
    /// Keys from the first one up to `lastkey` (relative to the first key; when
    /// negative, counted from the end of the arguments), every `step` arguments.
    /// A `limit` above 1 with `lastkey` -1 takes 1/limit of the remaining
    /// arguments (the keys of `XREAD ... STREAMS k1 k2 id1 id2`).
    Range {
        /// The last key, relative to the first, or from the end if negative.
        lastkey: i32,
        /// Arguments from one key to the next.
        step: i32,
        /// Divides the remaining arguments when `lastkey` is -1.
        limit: i32,
    },
    /// The argument at `keynumidx` (relative to the first) gives how many keys
    /// there are; they start at `firstkey` (relative) and are `step` apart.
    Keynum {
        /// Where the key count is, relative to the begin-search result.
        keynumidx: i32,
        /// Where the first key is, relative to the begin-search result.
        firstkey: i32,
        /// Arguments from one key to the next.
        step: i32,
    },
    /// The server cannot say: no keys from this spec.
    Unknown,
}

/// Where a cluster client sends a command that has no key (command tip
/// `request_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequestPolicy {
    /// To every node, primaries and replicas (e.g. `SCRIPT LOAD`).
    AllNodes,
    /// To every primary (e.g. `DBSIZE`, `KEYS`).
    AllShards,
    /// Split by key slot across the primaries that own them (e.g. `MSET`, `DEL`).
    MultiShard,
    /// Needs command-specific handling.
    Special,
}

/// How the replies of a command sent to several nodes combine (command tip
/// `response_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponsePolicy {
    /// Success if any node succeeded; the first success is the reply.
    OneSucceeded,
    /// Success only if every node succeeded.
    AllSucceeded,
    /// Logical AND of integer replies.
    AggLogicalAnd,
    /// Logical OR of integer replies.
    AggLogicalOr,
    /// Minimum of integer replies.
    AggMin,
    /// Maximum of integer replies.
    AggMax,
    /// Sum of integer replies (e.g. `DBSIZE`).
    AggSum,
    /// Needs command-specific handling.
    Special,
}

/// Every command and subcommand of the table, sorted by name.
pub fn all() -> &'static [CommandInfo] {
    table_generated::COMMANDS
}

/// Looks a command up by name, case-insensitively and without allocating;
/// a subcommand by its full name (`b"CLIENT|KILL"`). Binary search.
pub fn lookup(name: &[u8]) -> Option<&'static CommandInfo> {
    find(&[name])
}

/// Looks up the command a [`Cmd`] runs: its subcommand when the first
/// argument names one (`CLIENT KILL` gives `client|kill`), else the command.
pub fn lookup_cmd(cmd: &Cmd) -> Option<&'static CommandInfo> {
    let mut args = cmd.arg_iter();
    let name = args.next()?;
    let container = find(&[name])?;
    match args.next() {
        Some(sub) if !sub.contains(&b'|') => find(&[name, sub]).or(Some(container)),
        _ => Some(container),
    }
}

/// Binary search for the name made of `parts` joined by `|`.
fn find(parts: &[&[u8]]) -> Option<&'static CommandInfo> {
    let table = table_generated::COMMANDS;
    table
        .binary_search_by(|info| cmp_joined(info.name.as_bytes(), parts))
        .ok()
        .map(|i| &table[i])
}

/// Compares a lowercase table name with `parts` joined by `|`, ignoring the
/// case of `parts`, without building the joined string.
fn cmp_joined(name: &[u8], parts: &[&[u8]]) -> Ordering {
    let joined = parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let sep: &[u8] = if i == 0 { b"" } else { b"|" };
            sep.iter().chain(p.iter())
        })
        .map(|b| b.to_ascii_lowercase());
    name.iter().copied().cmp(joined)
}
