//! [`Job`]: one subscribe or unsubscribe command of a link, what it is for,
//! and how a request becomes jobs (many names per command; shard channels
//! grouped by slot, since `SSUBSCRIBE` takes channels of one slot only).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

use crate::cluster::key_slot;
use crate::cmd::Cmd;
use crate::error::Result;
use crate::pubsub::message::Kind;
use crate::pubsub::state::{Gap, Ticket};

/// Names per command at most: a 1,000-channel restore is a few commands,
/// each far below the server's query buffer limit.
const MAX_NAMES_PER_COMMAND: usize = 512;

/// One command and what its confirmation completes.
pub(crate) struct Job {
    pub(crate) kind: Kind,
    pub(crate) subscribe: bool,
    /// In the order the server confirms them.
    pub(crate) names: Vec<Bytes>,
    /// Names the user unsubscribed from while this subscribe was on its
    /// way: confirmed by the server, then dropped.
    pub(crate) cancelled: BTreeSet<Bytes>,
    /// A user's subscribe call to answer.
    pub(crate) ticket: Option<Arc<Ticket>>,
    /// An outage to report once restored.
    pub(crate) gap: Option<Arc<Gap>>,
    /// A user's unsubscribe call to answer.
    pub(crate) done: Option<oneshot::Sender<Result<()>>>,
    /// Rebuilt from the link's set after each reconnect (so dropped, not
    /// re-sent, when the connection breaks).
    pub(crate) restore: bool,
    /// The user's own call (registered in, or removed from, `channels()`).
    pub(crate) user: bool,
}

impl Job {
    /// The jobs that subscribe to `names`, each sharing `ticket` and `gap`.
    pub(crate) fn subscribe(
        kind: Kind,
        names: Vec<Bytes>,
        ticket: Option<Arc<Ticket>>,
        gap: Option<Arc<Gap>>,
        restore: bool,
    ) -> Vec<Job> {
        let user = ticket.is_some();
        batches(kind, names)
            .into_iter()
            .map(|names| Job {
                kind,
                subscribe: true,
                names,
                cancelled: BTreeSet::new(),
                ticket: ticket.clone(),
                gap: gap.clone(),
                done: None,
                restore,
                user,
            })
            .collect()
    }

    /// The jobs that unsubscribe from `names`; the last answers `done`.
    pub(crate) fn unsubscribe(
        kind: Kind,
        names: Vec<Bytes>,
        done: Option<oneshot::Sender<Result<()>>>,
        user: bool,
    ) -> Vec<Job> {
        let mut jobs: Vec<Job> = batches(kind, names)
            .into_iter()
            .map(|names| Job {
                kind,
                subscribe: false,
                names,
                cancelled: BTreeSet::new(),
                ticket: None,
                gap: None,
                done: None,
                restore: false,
                user,
            })
            .collect();
        match jobs.last_mut() {
            Some(last) => last.done = done,
            None => {
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
            }
        }
        jobs
    }

    /// Appends the command to `out`.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        let name = if self.subscribe {
            self.kind.subscribe_command()
        } else {
            self.kind.unsubscribe_command()
        };
        Cmd::new(name).args(&self.names).write_to(out);
    }

    /// The names that end up subscribed when the job completes.
    pub(crate) fn kept(&self) -> Vec<Bytes> {
        self.names
            .iter()
            .filter(|n| !self.cancelled.contains(*n))
            .cloned()
            .collect()
    }
}

/// `names` cut into commands: shard channels by slot, everything in
/// chunks of [`MAX_NAMES_PER_COMMAND`].
fn batches(kind: Kind, names: Vec<Bytes>) -> Vec<Vec<Bytes>> {
    let groups: Vec<Vec<Bytes>> = if kind == Kind::Shard {
        let mut by_slot: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
        for name in names {
            by_slot.entry(key_slot(&name)).or_default().push(name);
        }
        by_slot.into_values().collect()
    } else if names.is_empty() {
        Vec::new()
    } else {
        vec![names]
    };
    groups
        .into_iter()
        .flat_map(|group| {
            group
                .chunks(MAX_NAMES_PER_COMMAND)
                .map(<[Bytes]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(format!("ch{i}"))).collect()
    }

    #[test]
    fn channels_go_in_chunks_and_shard_channels_by_slot() {
        let jobs = Job::subscribe(Kind::Channel, names(1000), None, None, true);
        assert_eq!(
            jobs.iter().map(|j| j.names.len()).collect::<Vec<_>>(),
            [512, 488]
        );
        let jobs = Job::subscribe(Kind::Shard, names(50), None, None, false);
        let total: usize = jobs.iter().map(|j| j.names.len()).sum();
        assert_eq!(total, 50);
        for job in &jobs {
            let slot = key_slot(&job.names[0]);
            assert!(job.names.iter().all(|n| key_slot(n) == slot));
        }
        let mut out = BytesMut::new();
        Job::subscribe(Kind::Pattern, vec![Bytes::from("a*")], None, None, false)[0]
            .encode(&mut out);
        assert_eq!(&out[..], b"*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\na*\r\n");
    }

    #[tokio::test]
    async fn an_empty_unsubscribe_answers_at_once() {
        let (tx, rx) = oneshot::channel();
        assert!(Job::unsubscribe(Kind::Channel, Vec::new(), Some(tx), true).is_empty());
        assert!(rx.await.unwrap().is_ok());
    }
}
