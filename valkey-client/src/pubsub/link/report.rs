//! What the links of a cluster subscriber tell its router, through a
//! mailbox that never blocks a link: reports about one node replace each
//! other, and moved channels are at most the channels the links hold, so
//! the mailbox stays bounded without making anyone wait.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::error::Error;
use crate::pubsub::state::{Outage, Ticket};

/// One thing a link tells the router.
pub(crate) enum Report {
    /// Shard channels this link no longer holds: the server dropped them
    /// (their slot moved) or answered `MOVED`. The router places them
    /// again.
    Moved {
        /// The link's node.
        from: String,
        names: Vec<Bytes>,
        /// Where a `MOVED` reply pointed.
        redirect: Option<(String, u16)>,
        /// The user's call still waiting for them, if any.
        ticket: Option<Arc<Ticket>>,
        /// Since when they are lost, if they were subscribed before.
        outage: Option<Outage>,
    },
    /// The link's connection broke, or reconnecting failed.
    Down { addr: String, error: Error },
    /// The link is connected and every subscription it holds is restored.
    Up { addr: String },
}

/// The router's mailbox.
#[derive(Default)]
pub(crate) struct Reports {
    queue: Mutex<Vec<Report>>,
    notify: Notify,
}

impl Reports {
    pub(crate) fn send(&self, report: Report) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Report::Down { addr, .. } | Report::Up { addr } = &report {
            // Only the latest state of a node matters.
            queue.retain(|old| {
                !matches!(old, Report::Down { addr: a, .. } | Report::Up { addr: a } if a == addr)
            });
        }
        queue.push(report);
        drop(queue);
        self.notify.notify_one();
    }

    /// Everything reported so far.
    pub(crate) fn take(&self) -> Vec<Report> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits for a report (one sent before the wait counts).
    pub(crate) async fn wait(&self) {
        self.notify.notified().await;
    }
}
