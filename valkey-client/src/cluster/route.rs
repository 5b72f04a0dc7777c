//! Where a cluster sends a command, read from the command table: keyed
//! commands to the owner of their slot, the multi-key commands the client
//! splits itself by slot, keyless ones by their request policy (every
//! primary, every node, any node). A pure function of the command, tested
//! without a server.

use super::slot::key_slot;
use crate::cmd::Cmd;
use crate::command::{self, CommandFlags, RequestPolicy, ResponsePolicy};
use crate::error::{Error, ErrorKind, Result};

/// The multi-key commands whose keys the client splits by slot when they
/// span several (the server's `multi_shard` request policy, less `MSETEX`,
/// whose options apply to all its keys at once): each slot's keys go to its
/// owner, and the replies are merged in key order. Not atomic across slots.
const SPLIT_BY_SLOT: &[(&str, usize)] = &[
    ("del", 1),
    ("exists", 1),
    ("mget", 1),
    ("mset", 2),
    ("touch", 1),
    ("unlink", 1),
];

/// Where a command goes in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// To the owner of this slot (a replica may serve it when `readonly`
    /// and the client reads from replicas).
    Slot {
        /// The slot of every key of the command.
        slot: u16,
        /// The command only reads.
        readonly: bool,
    },
    /// Keys in several slots, of a command the client splits: the
    /// arguments after the name come in groups of `group` (a key, or a key
    /// and its value for `MSET`), each group to the owner of its key's slot.
    SplitBySlot {
        /// Arguments per key.
        group: usize,
    },
    /// To every primary, the replies combined by the policy.
    AllPrimaries(Option<ResponsePolicy>),
    /// To every node, primaries and replicas, the replies combined by the
    /// policy.
    AllNodes(Option<ResponsePolicy>),
    /// To any one node: a keyless command, or an unknown one.
    AnyNode {
        /// The command only reads.
        readonly: bool,
    },
    /// Needs its own handling (`SCAN`, `CLUSTERSCAN`: a cursor per node).
    Special,
}

/// Where `cmd` goes in a cluster. A command whose keys hash to different
/// slots is a [`ErrorKind::CrossSlot`] error before anything is sent, unless
/// the client splits it itself (`MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`,
/// `TOUCH`).
///
/// ```
/// use valkey_client::Cmd;
/// use valkey_client::cluster::{Route, key_slot, route};
/// let get = Cmd::new("GET").arg("foo");
/// assert_eq!(route(&get).unwrap(), Route::Slot { slot: key_slot(b"foo"), readonly: true });
/// let mget = Cmd::new("MGET").arg("a").arg("b");
/// assert_eq!(route(&mget).unwrap(), Route::SplitBySlot { group: 1 });
/// ```
pub fn route(cmd: &Cmd) -> Result<Route> {
    let Some(info) = command::lookup_cmd(cmd) else {
        return Ok(Route::AnyNode { readonly: false });
    };
    let readonly = info.flags.contains(CommandFlags::READONLY);
    let mut keys = command::keys(cmd).map(key_slot);
    let Some(slot) = keys
        .next()
        .or_else(|| command::first_key(cmd).map(key_slot))
    else {
        return Ok(match info.request_policy {
            Some(RequestPolicy::AllShards) => Route::AllPrimaries(info.response_policy),
            Some(RequestPolicy::AllNodes) => Route::AllNodes(info.response_policy),
            Some(RequestPolicy::Special) => Route::Special,
            _ => Route::AnyNode { readonly },
        });
    };
    if keys.all(|other| other == slot) {
        return Ok(Route::Slot { slot, readonly });
    }
    match SPLIT_BY_SLOT.iter().find(|(name, _)| *name == info.name) {
        Some(&(_, group)) => Ok(Route::SplitBySlot { group }),
        None => Err(Error::new(
            ErrorKind::CrossSlot,
            format!(
                "the keys of {} hash to different slots; a cluster runs a multi-key command \
                 only within one slot: give the keys a common hash tag, as in {{user1}}:a and \
                 {{user1}}:b",
                cmd.name().to_ascii_uppercase()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command from space-separated words.
    fn cmd(words: &str) -> Cmd {
        let mut words = words.split(' ');
        let name = words.next().unwrap_or_default();
        words.fold(Cmd::new(name), |cmd, word| cmd.arg(word))
    }

    #[test]
    fn routes_by_the_command_table() {
        let slot = |k: &str| key_slot(k.as_bytes());
        let table = [
            (
                "GET foo",
                Route::Slot {
                    slot: slot("foo"),
                    readonly: true,
                },
            ),
            (
                "SET foo 1",
                Route::Slot {
                    slot: slot("foo"),
                    readonly: false,
                },
            ),
            (
                "MGET {u}a {u}b",
                Route::Slot {
                    slot: slot("u"),
                    readonly: true,
                },
            ),
            ("MGET a b", Route::SplitBySlot { group: 1 }),
            ("MSET a 1 b 2", Route::SplitBySlot { group: 2 }),
            ("DEL a b c", Route::SplitBySlot { group: 1 }),
            ("EVAL return 0", Route::AnyNode { readonly: false }),
            (
                "EVAL return 1 k",
                Route::Slot {
                    slot: slot("k"),
                    readonly: false,
                },
            ),
            (
                "SPUBLISH chan msg",
                Route::Slot {
                    slot: slot("chan"),
                    readonly: false,
                },
            ),
            ("PUBLISH chan msg", Route::AnyNode { readonly: false }),
            ("DBSIZE", Route::AllPrimaries(Some(ResponsePolicy::AggSum))),
            ("KEYS *", Route::AllPrimaries(None)),
            (
                "SCRIPT LOAD return",
                Route::AllNodes(Some(ResponsePolicy::AllSucceeded)),
            ),
            ("SCAN 0", Route::Special),
            ("NOSUCHCOMMAND x", Route::AnyNode { readonly: false }),
        ];
        for (words, expected) in table {
            assert_eq!(route(&cmd(words)).unwrap(), expected, "{words}");
        }
    }

    #[test]
    fn keys_in_several_slots_are_a_cross_slot_error_unless_split() {
        for words in [
            "SUNION a b",
            "RENAME a b",
            "MSETNX a 1 b 2",
            "EVAL return 2 a b",
        ] {
            let err = route(&cmd(words)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::CrossSlot, "{words}: {err}");
        }
        assert!(route(&cmd("SUNION {t}a {t}b")).is_ok());
    }
}
