//! A link: one dedicated connection to one node, driven by a task of its
//! own, that carries a set of subscriptions and keeps them.
//!
//! The task is the only one to touch the socket. It takes commands from
//! its owner ([`LinkCmd`]), writes `SUBSCRIBE`-family commands and `PING`
//! only (so it works in RESP2's subscribed mode as in RESP3), reads
//! confirmations and messages, and puts messages in the subscriber's
//! bounded buffer. It keeps the set of names the server confirmed; when
//! the connection breaks (EOF, reset, an unanswered `PING`, a refused
//! restore) it reconnects with the client's backoff, subscribes to the
//! whole set again in a few batched commands, and reports the gap once the
//! server confirmed every name. Commands are taken in every state, also
//! while disconnected, so the owner never waits on a link.

mod conn;
mod job;
pub(crate) mod report;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::message::{Kind, Message};
use super::state::{Gap, Outage, Shared, Subs, TaskGuard, Ticket};
use crate::backoff::Backoff;
use crate::cluster::ValkeyCluster;
use crate::config::ConnectionConfig;
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::node::events::Event;
use job::Job;
use report::{Report, Reports};

/// Commands waiting for a link, at most; the link takes them in every
/// state, so its owner waits only for a moment.
const COMMAND_QUEUE: usize = 64;

/// A connection that carried its subscriptions this long was healthy: the
/// next failure starts the backoff over. (A server that accepts and drops
/// connections at once keeps growing the waits instead.)
const HEALTHY_AFTER: Duration = Duration::from_secs(1);

/// The shortest wait before reconnect attempt `n`: 10 ms, doubling, at
/// most 1 s, whatever the backoff says, so even `NoBackoff` never spins.
fn floor_wait(failures: u32) -> Duration {
    Duration::from_millis(10u64 << failures.saturating_sub(1).min(7)).min(Duration::from_secs(1))
}

/// The longest wait between reconnect attempts, whatever the backoff says.
pub(crate) const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(30);

fn reconnect_wait(backoff: &mut dyn Backoff, failures: u32) -> Duration {
    backoff
        .compute(failures)
        .max(floor_wait(failures))
        .min(MAX_RECONNECT_WAIT)
}

/// What the owner asks of a link.
pub(crate) enum LinkCmd {
    /// Subscribe to `names`. `ticket`: a user's call, answered once the
    /// server confirmed them all; `gap`: an outage reported once they are
    /// confirmed (the router moving channels here).
    Subscribe {
        kind: Kind,
        names: Vec<Bytes>,
        ticket: Option<Arc<Ticket>>,
        gap: Option<Arc<Gap>>,
    },
    /// Unsubscribe from `names`, no longer restoring them; `done` is
    /// answered once the server confirmed (at once while disconnected: a
    /// new connection starts with nothing). `user`: the user's own call,
    /// so the names leave `channels()` as well.
    Unsubscribe {
        kind: Kind,
        names: Vec<Bytes>,
        done: Option<oneshot::Sender<Result<()>>>,
        user: bool,
    },
}

/// Where a link connects.
pub(crate) enum Target {
    /// Always the same server.
    Fixed(ConnectionConfig),
    /// Any node of a cluster (plain channels and patterns reach every
    /// node): the current one while it answers, another primary once a
    /// reconnect attempt to it failed.
    AnyNode {
        cluster: ValkeyCluster,
        current: ConnectionConfig,
    },
}

impl Target {
    fn config(&self) -> &ConnectionConfig {
        match self {
            Target::Fixed(config) => config,
            Target::AnyNode { current, .. } => current,
        }
    }

    /// The configuration for reconnect attempt `failures`.
    fn next(&mut self, failures: u32) -> ConnectionConfig {
        if let Target::AnyNode { cluster, current } = self
            && failures >= 2
        {
            cluster.trigger_topology_refresh();
            let addr = current.addr().to_string();
            if let Some(other) = cluster.other_primary_config(&addr, failures as usize) {
                *current = other;
            }
        }
        self.config().clone()
    }
}

/// The owner's end of a link: dropping it ends the task and closes the
/// connection.
pub(crate) struct LinkHandle {
    pub(crate) commands: mpsc::Sender<LinkCmd>,
    task: TaskGuard,
}

impl LinkHandle {
    /// The command sender and the guard that ends the task.
    pub(crate) fn into_parts(self) -> (mpsc::Sender<LinkCmd>, TaskGuard) {
        (self.commands, self.task)
    }
}

/// Starts a link on `first` (already connected) or, without one,
/// connecting on its own. `on_end` is dropped when the task ends.
pub(crate) fn spawn<G: Send + 'static>(
    shared: Arc<Shared>,
    target: Target,
    first: Option<Connection>,
    reports: Option<Arc<Reports>>,
    on_end: G,
) -> LinkHandle {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let link = Link {
        addr: target.config().addr().to_string(),
        backoff: shared.backoff.clone(),
        shared,
        target,
        commands: rx,
        reports,
        wanted: Subs::default(),
        pending: VecDeque::new(),
        held: None,
        outage: None,
        last_error: None,
        failures: 0,
        dropped_unreported: 0,
        last_drop_report: None,
    };
    let task = tokio::spawn(async move {
        let _on_end = on_end;
        link.run(first).await;
    });
    LinkHandle {
        commands: tx,
        task: TaskGuard(task),
    }
}

struct Link {
    shared: Arc<Shared>,
    target: Target,
    /// The node connected to (or last tried).
    addr: String,
    commands: mpsc::Receiver<LinkCmd>,
    /// The router of a cluster subscriber; `None` for a standalone one.
    reports: Option<Arc<Reports>>,
    /// What the server confirmed and the link restores after a reconnect.
    wanted: Subs,
    /// Commands for the next connection (taken while disconnected, or
    /// unconfirmed when the last one broke), in order.
    pending: VecDeque<Job>,
    /// A message waiting for room in the buffer (backpressure).
    held: Option<Message>,
    /// Since when subscriptions are lost, until restored.
    outage: Option<Outage>,
    last_error: Option<Error>,
    /// Failed connections in a row, for the backoff.
    failures: u32,
    backoff: Box<dyn Backoff>,
    dropped_unreported: u64,
    last_drop_report: Option<Instant>,
}

impl Link {
    async fn run(mut self, first: Option<Connection>) {
        // A link started without a connection tries once at once, quietly.
        let mut quiet = first.is_none();
        let mut next = first;
        loop {
            let conn = match next.take() {
                Some(conn) => conn,
                None => match self.reconnect(std::mem::take(&mut quiet)).await {
                    Some(conn) => conn,
                    None => return,
                },
            };
            match self.serve(conn).await {
                conn::Served::Closed => return,
                conn::Served::Lost { error, restored_at } => {
                    if restored_at.is_some_and(|at| at.elapsed() >= HEALTHY_AFTER) {
                        self.failures = 0;
                        self.backoff.reset();
                    }
                    tracing::debug!(addr = %self.addr, error = %error, "subscriber connection lost");
                    self.lost(error);
                }
            }
        }
    }

    /// Notes a broken connection: the outage starts now unless one is
    /// already under way (a restore that broke too).
    fn lost(&mut self, error: Error) {
        if self.outage.is_none() && !self.wanted.is_empty() {
            self.outage = Some(Outage {
                since: Instant::now(),
                cause: error.clone(),
            });
        }
        self.report(Report::Down {
            addr: self.addr.clone(),
            error: error.clone(),
        });
        self.last_error = Some(error);
    }

    fn report(&self, report: Report) {
        if let Some(reports) = &self.reports {
            reports.send(report);
        }
    }

    /// Opens a new connection: waits the backoff, then tries, until it
    /// works (the first try at once when `quiet`). `None` when the owner
    /// is gone.
    async fn reconnect(&mut self, mut quiet: bool) -> Option<Connection> {
        loop {
            // A quiet first attempt goes at once to the usual address; every
            // other one waits out the backoff first, and may move on to
            // another address.
            let attempt = if std::mem::take(&mut quiet) {
                0
            } else {
                self.failures = self.failures.saturating_add(1);
                let wait = reconnect_wait(&mut *self.backoff, self.failures);
                let error = self
                    .last_error
                    .clone()
                    .unwrap_or_else(|| Error::new(ErrorKind::Connection, "not connected"));
                self.shared.emit(Event::Reconnecting {
                    addr: &self.addr,
                    attempt: self.failures,
                    wait,
                    error: &error,
                });
                self.while_offline(tokio::time::sleep(wait)).await?;
                self.failures
            };
            let config = self.target.next(attempt);
            if attempt > 0 {
                self.addr = config.addr().to_string();
            }
            match self.while_offline(Connection::connect(&config)).await? {
                Ok(conn) => return Some(conn),
                Err(err) => {
                    self.report(Report::Down {
                        addr: self.addr.clone(),
                        error: err.clone(),
                    });
                    self.last_error = Some(err);
                }
            }
        }
    }

    /// Runs `fut` while taking commands. `None` when the owner is gone.
    async fn while_offline<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            let cmd = tokio::select! {
                out = &mut fut => return Some(out),
                cmd = self.commands.recv() => cmd,
            };
            self.command_offline(cmd?);
        }
    }

    fn command_offline(&mut self, cmd: LinkCmd) {
        match cmd {
            LinkCmd::Subscribe {
                kind,
                names,
                ticket,
                gap,
            } => self
                .pending
                .extend(Job::subscribe(kind, names, ticket, gap, false)),
            LinkCmd::Unsubscribe {
                kind,
                names,
                done,
                user,
            } => {
                self.forget(kind, &names, user);
                if let Some(done) = done {
                    let _ = done.send(Ok(()));
                }
            }
        }
    }

    /// Stops keeping `names`: out of the set restored, out of the commands
    /// not sent yet, and (for the user's call) out of `channels()`.
    fn forget(&mut self, kind: Kind, names: &[Bytes], user: bool) {
        let set = self.wanted.get_mut(kind);
        for name in names {
            set.remove(name);
        }
        if user {
            self.shared.unregister(kind, names);
        }
        let (shared, addr) = (&self.shared, &self.addr);
        self.pending.retain_mut(|job| {
            if job.kind != kind || !job.subscribe {
                return true;
            }
            let before = job.names.len();
            job.names.retain(|n| !names.contains(n));
            if let Some(ticket) = &job.ticket {
                ticket.confirm(before - job.names.len());
            }
            if let Some(gap) = &job.gap {
                gap.forget(kind, names, addr, shared);
            }
            !job.names.is_empty()
        });
    }

    /// Reports the messages dropped since the last report, at most once a
    /// second.
    fn report_drops(&mut self) {
        if self.dropped_unreported == 0 {
            return;
        }
        let now = Instant::now();
        if self
            .last_drop_report
            .is_some_and(|at| now < at + Duration::from_secs(1))
        {
            return;
        }
        self.shared.emit(Event::MessagesDropped {
            addr: &self.addr,
            dropped: self.dropped_unreported,
            total: self.shared.queue.dropped(),
        });
        self.dropped_unreported = 0;
        self.last_drop_report = Some(now);
    }

    /// When the next drop report is due, if one is.
    fn drop_report_due(&self) -> Option<Instant> {
        (self.dropped_unreported > 0).then(|| {
            self.last_drop_report
                .map_or_else(Instant::now, |at| at + Duration::from_secs(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::NoBackoff;

    #[test]
    fn reconnect_waits_have_a_floor_and_a_cap() {
        let mut none = NoBackoff;
        assert_eq!(reconnect_wait(&mut none, 1), Duration::from_millis(10));
        assert_eq!(reconnect_wait(&mut none, 4), Duration::from_millis(80));
        assert_eq!(reconnect_wait(&mut none, 50), Duration::from_secs(1));
        let mut long = crate::backoff::ConstantBackoff::new(Duration::from_secs(3600));
        assert_eq!(reconnect_wait(&mut long, 1), MAX_RECONNECT_WAIT);
    }
}
