//! What a subscribed connection receives: messages into the buffer,
//! confirmations completing the oldest command, the server dropping shard
//! channels on its own, and error replies (`MOVED` among them).

use std::mem;

use bytes::Bytes;
use tokio::time::Instant;

use super::{Conn, Entry};
use crate::cluster::Redirect;
use crate::error::{Error, ErrorKind, Result};
use crate::pubsub::link::Link;
use crate::pubsub::link::job::Job;
use crate::pubsub::link::report::Report;
use crate::pubsub::message::{Frame, Kind, Message};
use crate::pubsub::options::Overflow;
use crate::pubsub::queue::Push;
use crate::pubsub::state::{Gap, Outage, Subs};
use crate::resp::{self, ServerError};

impl Link {
    /// Handles the frames already read, until one message does not fit in
    /// the buffer (backpressure) or nothing complete is left.
    pub(super) fn process_buffered(&mut self, c: &mut Conn) -> Result<()> {
        if let Some(msg) = self.held.take() {
            if let Some(msg) = self.deliver(c, msg) {
                self.held = Some(msg);
                return Ok(());
            }
            // The pause was ours, not the server's silence.
            c.last_read = Instant::now();
        }
        while let Some(value) = resp::decode(&mut c.read_buf, &c.limits)? {
            match Frame::classify(value) {
                Frame::Message(msg) => {
                    if let Some(msg) = self.deliver(c, msg) {
                        self.held = Some(msg);
                        return Ok(());
                    }
                }
                Frame::Subscribed { kind, name } => self.confirmed(c, kind, true, name),
                Frame::Unsubscribed { kind, name } => self.confirmed(c, kind, false, name),
                Frame::Pong => {
                    if matches!(c.in_flight.front(), Some(Entry::Ping)) {
                        c.in_flight.pop_front();
                        c.ping_sent = None;
                    } else {
                        tracing::debug!(addr = %self.addr, "PONG without a PING in flight; ignored");
                    }
                }
                Frame::Error(err) => self.error_reply(c, err)?,
                Frame::Other(value) => {
                    tracing::debug!(addr = %self.addr, ?value, "unexpected frame on a subscriber connection; ignored");
                }
            }
        }
        Ok(())
    }

    /// Puts `msg` in the buffer, or hands it back when the buffer is full
    /// and the policy is to wait.
    fn deliver(&mut self, c: &Conn, msg: Message) -> Option<Message> {
        let allow_drop = self.shared.overflow == Overflow::DropOldest || c.user_waiting();
        match self.shared.queue.push(msg, allow_drop) {
            Push::Queued => None,
            Push::DroppedOldest => {
                self.dropped_unreported += 1;
                None
            }
            Push::Full(msg) => Some(msg),
        }
    }

    /// A confirmation: the next one the oldest command awaits, or the
    /// server dropping a subscription on its own.
    fn confirmed(&mut self, c: &mut Conn, kind: Kind, subscribed: bool, name: Bytes) {
        if let Some(Entry::Job { job, confirmed }) = c.in_flight.front_mut()
            && job.kind == kind
            && job.subscribe == subscribed
            && job.names.get(*confirmed) == Some(&name)
        {
            *confirmed += 1;
            if *confirmed == job.names.len()
                && let Some(Entry::Job { job, .. }) = c.in_flight.pop_front()
            {
                self.job_done(c, job);
            }
            return;
        }
        if !subscribed && self.wanted.get(kind).contains(&name) {
            self.dropped_by_server(c, kind, name);
        } else {
            tracing::debug!(addr = %self.addr, ?kind, subscribed, "confirmation for no command; ignored");
        }
    }

    fn job_done(&mut self, c: &mut Conn, job: Job) {
        if !job.subscribe {
            if let Some(done) = job.done {
                let _ = done.send(Ok(()));
            }
            return;
        }
        let kept = job.kept();
        self.wanted.get_mut(job.kind).extend(kept.iter().cloned());
        if job.user {
            self.shared.register(job.kind, &kept);
        }
        if let Some(ticket) = &job.ticket {
            ticket.confirm(job.names.len());
        }
        if let Some(gap) = &job.gap {
            gap.confirm(job.kind, &kept, &self.addr, &self.shared);
        }
        if job.restore {
            self.restore_job_finished(c);
        }
    }

    pub(super) fn restore_job_finished(&mut self, c: &mut Conn) {
        c.restoring = c.restoring.saturating_sub(1);
        if c.restoring == 0 {
            self.restored(c);
        }
    }

    /// The server unsubscribed `name` on its own: a shard channel whose
    /// slot moved away (a slot migration, or this primary demoted by a
    /// failover). The router places it on the new owner; without one, it
    /// is subscribed again here.
    fn dropped_by_server(&mut self, c: &mut Conn, kind: Kind, name: Bytes) {
        self.wanted.get_mut(kind).remove(&name);
        let outage = Outage {
            since: Instant::now(),
            cause: Error::new(
                ErrorKind::Moved,
                format!(
                    "{} dropped the subscription to {} on its own (its slot moved)",
                    self.addr,
                    String::from_utf8_lossy(&name)
                ),
            ),
        };
        if self.reports.is_some() && kind == Kind::Shard {
            c.moved_since.get_or_insert(outage);
            c.moved.push(name);
            return;
        }
        let mut names = Subs::default();
        names.get_mut(kind).insert(name.clone());
        let gap = Gap::new(outage, names);
        c.outbox
            .extend(Job::subscribe(kind, vec![name], None, Some(gap), false));
    }

    /// Hands the shard channels the server dropped to the router, in one
    /// report per batch of frames.
    pub(super) fn send_moved(&mut self, c: &mut Conn) {
        if c.moved.is_empty() {
            return;
        }
        self.report(Report::Moved {
            from: self.addr.clone(),
            names: mem::take(&mut c.moved),
            redirect: None,
            ticket: None,
            outage: c.moved_since.take(),
        });
    }

    /// An error reply: it answers the oldest command awaiting a reply.
    fn error_reply(&mut self, c: &mut Conn, err: ServerError) -> Result<()> {
        let entry = c.in_flight.pop_front();
        let error = Error::from_server(err.clone());
        let Some(Entry::Job { job, .. }) = entry else {
            // A refused PING (or a reply to nothing): this connection
            // cannot be trusted any more.
            return Err(error);
        };
        if job.subscribe && job.kind == Kind::Shard && err.code == "MOVED" && self.reports.is_some()
        {
            self.moved_reply(c, job, &err);
            return Ok(());
        }
        if !job.subscribe {
            if let Some(done) = job.done {
                let _ = done.send(Err(error));
            }
            return Ok(());
        }
        if let Some(ticket) = job.ticket.as_ref().filter(|_| !job.restore) {
            ticket.fail(error);
            return Ok(());
        }
        // A restore or a move refused (CLUSTERDOWN, LOADING, an ACL
        // change): start over on a new connection, after the backoff.
        tracing::debug!(addr = %self.addr, error = %error, "resubscription refused");
        if !job.restore {
            self.pending.push_front(job);
        }
        Err(error)
    }

    /// `MOVED` to an `SSUBSCRIBE`: the router places the channels on the
    /// node it names.
    fn moved_reply(&mut self, c: &mut Conn, job: Job, err: &ServerError) {
        let host = self.addr.rsplit_once(':').map_or("", |(h, _)| h);
        let redirect = Redirect::parse(&err.message, host).map(|r| (r.host, r.port));
        let kept = job.kept();
        if let Some(ticket) = &job.ticket {
            // Names unsubscribed meanwhile are done with.
            ticket.confirm(job.names.len() - kept.len());
        }
        if job.restore {
            for name in &kept {
                self.wanted.get_mut(Kind::Shard).remove(name);
            }
        }
        if let Some(gap) = &job.gap {
            gap.forget(Kind::Shard, &kept, &self.addr, &self.shared);
        }
        self.report(Report::Moved {
            from: self.addr.clone(),
            names: kept,
            redirect,
            ticket: job.ticket.clone(),
            outage: job.gap.as_ref().map(|g| g.outage().clone()),
        });
        if job.restore {
            self.restore_job_finished(c);
        }
    }
}
