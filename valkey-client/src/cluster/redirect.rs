//! The cluster client's inner-loop decision: what to do with one attempt's
//! failure (retry-semantics section 4). A pure function of the failure and
//! the counts so far, tested as a table without a server.

use std::time::Duration;

use super::slot::SLOTS;
use crate::error::{Error, ErrorKind};

/// Redirections (MOVED, ASK, TRYAGAIN) one command follows at most before a
/// "TTL exhausted" cluster error.
pub const MAX_REDIRECTIONS: u32 = 16;

/// Where a `MOVED` or `ASK` reply points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The slot that moved.
    pub slot: u16,
    /// The node to ask: the host in the reply, or the host that answered
    /// when the reply leaves it empty.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl Redirect {
    /// Parses the message of a `MOVED`/`ASK` reply (`3999 127.0.0.1:6381`,
    /// `3999 :6381`, `3999 ::1:6381`); `answered_by` stands for an empty host.
    pub fn parse(message: &str, answered_by: &str) -> Option<Redirect> {
        let (slot, addr) = message.trim().split_once(' ')?;
        let slot: u16 = slot.parse().ok().filter(|&s| s < SLOTS)?;
        let (host, port) = addr.trim().rsplit_once(':')?;
        let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { answered_by } else { host };
        Some(Redirect {
            slot,
            host: host.to_string(),
            port,
        })
    }
}

/// What the inner loop does next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Repoint the slot at once and send again to its new owner; ask for a
    /// background topology refresh, and wait for it first when `wait_refresh`
    /// (every `reinitialize_steps`-th MOVED since the last refresh).
    Moved {
        /// The new owner.
        to: Redirect,
        /// Wait for the refresh before retrying.
        wait_refresh: bool,
    },
    /// Send `ASKING` and the command, in one write, to that node, once; the
    /// slot map is unchanged.
    Ask(Redirect),
    /// Send again to the same node after this wait.
    TryAgain(Duration),
    /// Fail this attempt after this wait and a topology refresh: the outer
    /// loop (`cluster_error_retry_attempts`) decides whether to try again.
    FailAttempt(Duration),
    /// Return the error to the caller.
    Return,
}

/// TRYAGAIN waits: doubling from 1 ms, at most 10 ms, so a slot migration
/// in progress is polled quickly but never hammered.
fn tryagain_wait(tryagains: u32) -> Duration {
    Duration::from_millis((1u64 << tryagains.min(4)).min(10))
}

/// The wait before a CLUSTERDOWN/MASTERDOWN attempt fails (section 4).
pub const CLUSTER_DOWN_WAIT: Duration = Duration::from_millis(250);

/// Decides what to do with `err`, the failure of one attempt at a node.
/// `redirections` counts the MOVED/ASK/TRYAGAIN followed so far for this
/// command, `tryagains` the TRYAGAIN replies in a row, `moved_since_refresh`
/// the MOVED replies since the last topology refresh. Connection failures
/// are not decided here: the node's own `Retry` handles them.
pub fn decide(
    err: &Error,
    answered_by: &str,
    redirections: u32,
    tryagains: u32,
    moved_since_refresh: u32,
    reinitialize_steps: u32,
) -> Action {
    let redirect = || Redirect::parse(err.message(), answered_by);
    let redirect_allowed = redirections < MAX_REDIRECTIONS;
    match err.kind() {
        ErrorKind::Moved if redirect_allowed => match redirect() {
            Some(to) => Action::Moved {
                to,
                wait_refresh: reinitialize_steps > 0
                    && (moved_since_refresh + 1).is_multiple_of(reinitialize_steps),
            },
            None => Action::Return,
        },
        ErrorKind::Ask if redirect_allowed => redirect().map_or(Action::Return, Action::Ask),
        ErrorKind::TryAgain if redirect_allowed => Action::TryAgain(tryagain_wait(tryagains)),
        ErrorKind::ClusterDown | ErrorKind::MasterDown => Action::FailAttempt(CLUSTER_DOWN_WAIT),
        _ => Action::Return,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::ServerError;

    fn reply(line: &str) -> Error {
        Error::from_server(ServerError::from_line(line.as_bytes()))
    }

    fn to(host: &str, port: u16, slot: u16) -> Redirect {
        Redirect {
            slot,
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn redirects_parse_with_and_without_a_host() {
        let table = [
            ("3999 127.0.0.1:6381", Some(to("127.0.0.1", 6381, 3999))),
            ("3999 :6381", Some(to("answering.host", 6381, 3999))),
            ("12182 ::1:7000", Some(to("::1", 7000, 12182))),
            ("12182 [::1]:7000", Some(to("::1", 7000, 12182))),
            ("16384 h:1", None),
            ("1 h:0", None),
            ("x h:1", None),
            ("1", None),
        ];
        for (message, expected) in table {
            assert_eq!(
                Redirect::parse(message, "answering.host"),
                expected,
                "{message}"
            );
        }
    }

    #[test]
    fn the_decision_table() {
        let moved = reply("MOVED 3999 127.0.0.1:6381");
        let ask = reply("ASK 3999 127.0.0.1:6381");
        let node = to("127.0.0.1", 6381, 3999);
        // (error, redirections, tryagains, moved since refresh, steps) -> action
        let table = [
            (
                &moved,
                0,
                0,
                0,
                5,
                Action::Moved {
                    to: node.clone(),
                    wait_refresh: false,
                },
            ),
            (
                &moved,
                3,
                0,
                4,
                5,
                Action::Moved {
                    to: node.clone(),
                    wait_refresh: true,
                },
            ),
            (
                &moved,
                3,
                0,
                4,
                0,
                Action::Moved {
                    to: node.clone(),
                    wait_refresh: false,
                },
            ),
            (&moved, 16, 0, 0, 5, Action::Return),
            (&ask, 0, 0, 0, 5, Action::Ask(node.clone())),
            (&ask, 16, 0, 0, 5, Action::Return),
            (
                &reply("TRYAGAIN busy"),
                0,
                0,
                0,
                5,
                Action::TryAgain(Duration::from_millis(1)),
            ),
            (
                &reply("TRYAGAIN busy"),
                5,
                5,
                0,
                5,
                Action::TryAgain(Duration::from_millis(10)),
            ),
            (&reply("TRYAGAIN busy"), 16, 9, 0, 5, Action::Return),
            (
                &reply("CLUSTERDOWN down"),
                0,
                0,
                0,
                5,
                Action::FailAttempt(CLUSTER_DOWN_WAIT),
            ),
            (
                &reply("MASTERDOWN down"),
                0,
                0,
                0,
                5,
                Action::FailAttempt(CLUSTER_DOWN_WAIT),
            ),
            (
                &reply("NOAUTH Authentication required."),
                0,
                0,
                0,
                5,
                Action::Return,
            ),
            (&reply("WRONGTYPE not a list"), 0, 0, 0, 5, Action::Return),
            (&reply("MOVED garbage"), 0, 0, 0, 5, Action::Return),
        ];
        for (err, redirections, tryagains, moved, steps, expected) in table {
            assert_eq!(
                decide(err, "127.0.0.1", redirections, tryagains, moved, steps),
                expected,
                "{err} after {redirections} redirections"
            );
        }
    }
}
