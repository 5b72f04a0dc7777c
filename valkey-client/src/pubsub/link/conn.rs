//! A link while connected: the socket, the commands awaiting their
//! confirmations (in the order the server answers), messages into the
//! buffer, and the `PING` that tells a silent connection from a dead one.

use std::collections::VecDeque;
use std::mem;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

mod frames;

use super::job::Job;
use super::report::Report;
use super::{Link, LinkCmd};
use crate::cmd::Cmd;
use crate::connection::{Connection, READ_CHUNK, Stream};
use crate::error::{Error, ErrorKind, Result};
use crate::pubsub::message::Kind;
use crate::pubsub::sleep_until_some;
use crate::pubsub::state::{Gap, Outage};
use crate::resp::Limits;

/// How a connection ended.
pub(super) enum Served {
    /// The owner is gone.
    Closed,
    /// It broke; `restored_at`: when it had every subscription back.
    Lost {
        error: Error,
        restored_at: Option<Instant>,
    },
}

/// What the server will answer next, in order.
enum Entry {
    Ping,
    Job { job: Job, confirmed: usize },
}

struct Conn {
    stream: Stream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    limits: Limits,
    in_flight: VecDeque<Entry>,
    /// Restore commands not confirmed yet.
    restoring: usize,
    restored_at: Option<Instant>,
    last_read: Instant,
    ping_sent: Option<Instant>,
    /// Commands to send once the buffered frames are handled.
    outbox: Vec<Job>,
    /// Shard channels the server dropped (their slot moved), for the
    /// router, with when the first went.
    moved: Vec<Bytes>,
    moved_since: Option<Outage>,
}

/// What woke the connection's loop.
enum Wake {
    Command(Option<LinkCmd>),
    Room,
    Read(std::io::Result<usize>),
    Timer,
}

impl Conn {
    /// When the `PING` timer fires: `ping_interval` after the last read,
    /// or, with a `PING` unanswered, `ping_timeout` after it was sent (or
    /// after the last read, if later).
    fn timer(&self, link: &Link) -> Instant {
        match self.ping_sent {
            Some(sent) => sent.max(self.last_read) + link.shared.ping_timeout,
            None => self.last_read + link.shared.ping_interval,
        }
    }

    /// A user's call waits for a confirmation behind the buffered
    /// messages: the oldest may be dropped so that it can arrive.
    fn user_waiting(&self) -> bool {
        self.in_flight.iter().any(|entry| {
            matches!(entry, Entry::Job { job, .. } if job.ticket.is_some() || job.done.is_some())
        })
    }
}

impl Link {
    pub(super) async fn serve(&mut self, conn: Connection) -> Served {
        let Some((stream, read_buf, limits, _, _)) = conn.into_parts() else {
            return Served::Lost {
                error: Error::new(
                    ErrorKind::Connection,
                    format!("the connection to {} closed at once", self.addr),
                ),
                restored_at: None,
            };
        };
        let mut c = Conn {
            stream,
            read_buf,
            write_buf: BytesMut::new(),
            limits,
            in_flight: VecDeque::new(),
            restoring: 0,
            restored_at: None,
            last_read: Instant::now(),
            ping_sent: None,
            outbox: Vec::new(),
            moved: Vec::new(),
            moved_since: None,
        };
        match self.drive(&mut c).await {
            Ok(()) => Served::Closed,
            Err(error) => {
                self.requeue(&mut c);
                Served::Lost {
                    error,
                    restored_at: c.restored_at,
                }
            }
        }
    }

    /// Serves the connection until it breaks (`Err`) or the owner is gone.
    async fn drive(&mut self, c: &mut Conn) -> Result<()> {
        self.start(c).await?;
        loop {
            self.process_buffered(c)?;
            self.send_moved(c);
            if !c.outbox.is_empty() {
                let jobs = mem::take(&mut c.outbox);
                self.send_jobs(c, jobs).await?;
            }
            self.report_drops();
            let timer = c.timer(self);
            let drop_report = self.drop_report_due();
            let waiting = self.held.is_some();
            if !waiting {
                c.read_buf.reserve(READ_CHUNK);
            }
            let wake = tokio::select! {
                cmd = self.commands.recv() => Wake::Command(cmd),
                _ = self.shared.queue.room(), if waiting => Wake::Room,
                read = c.stream.read_buf(&mut c.read_buf), if !waiting => Wake::Read(read),
                _ = tokio::time::sleep_until(timer), if !waiting => Wake::Timer,
                _ = sleep_until_some(drop_report) => Wake::Timer,
            };
            match wake {
                Wake::Command(None) => return Ok(()),
                Wake::Command(Some(cmd)) => self.command(c, cmd).await?,
                Wake::Room => {}
                Wake::Read(Ok(0)) => {
                    return Err(Error::new(
                        ErrorKind::Connection,
                        format!("{} closed the connection", self.addr),
                    ));
                }
                Wake::Read(Ok(_)) => c.last_read = Instant::now(),
                Wake::Read(Err(e)) => return Err(Error::io(format!("read from {}", self.addr), e)),
                Wake::Timer if !waiting => self.ping_timer(c).await?,
                Wake::Timer => {}
            }
        }
    }

    /// Restores what the link keeps (batched), then sends the commands
    /// that were waiting for a connection.
    async fn start(&mut self, c: &mut Conn) -> Result<()> {
        let mut jobs = Vec::new();
        if !self.wanted.is_empty() {
            let gap = self
                .outage
                .clone()
                .map(|outage| Gap::new(outage, self.wanted.clone()));
            for kind in Kind::ALL {
                let names: Vec<Bytes> = self.wanted.get(kind).iter().cloned().collect();
                jobs.extend(Job::subscribe(kind, names, None, gap.clone(), true));
            }
        }
        c.restoring = jobs.len();
        if c.restoring == 0 {
            self.restored(c);
        }
        jobs.extend(self.pending.drain(..));
        if jobs.is_empty() {
            return Ok(());
        }
        self.send_jobs(c, jobs).await
    }

    /// Every subscription the link keeps is back.
    fn restored(&mut self, c: &mut Conn) {
        c.restored_at = Some(Instant::now());
        self.outage = None;
        self.report(Report::Up {
            addr: self.addr.clone(),
        });
    }

    async fn command(&mut self, c: &mut Conn, cmd: LinkCmd) -> Result<()> {
        let jobs = match cmd {
            LinkCmd::Subscribe {
                kind,
                names,
                ticket,
                gap,
            } => Job::subscribe(kind, names, ticket, gap, false),
            LinkCmd::Unsubscribe {
                kind,
                names,
                done,
                user,
            } => {
                self.forget(kind, &names, user);
                // Subscribes on their way: confirmed, then dropped.
                for entry in &mut c.in_flight {
                    if let Entry::Job { job, .. } = entry
                        && job.kind == kind
                        && job.subscribe
                    {
                        let hit: Vec<Bytes> = job
                            .names
                            .iter()
                            .filter(|n| names.contains(n))
                            .cloned()
                            .collect();
                        if let Some(gap) = &job.gap {
                            gap.forget(kind, &hit, &self.addr, &self.shared);
                        }
                        job.cancelled.extend(hit);
                    }
                }
                Job::unsubscribe(kind, names, done, user)
            }
        };
        self.send_jobs(c, jobs).await
    }

    /// Writes `jobs` in one write, each then awaiting its confirmations.
    async fn send_jobs(&mut self, c: &mut Conn, jobs: Vec<Job>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        c.write_buf.clear();
        for job in jobs {
            job.encode(&mut c.write_buf);
            c.in_flight.push_back(Entry::Job { job, confirmed: 0 });
        }
        self.flush(c).await
    }

    /// Writes the write buffer whole, within the ping timeout: a server
    /// that takes nothing is as dead as one that answers nothing.
    async fn flush(&mut self, c: &mut Conn) -> Result<()> {
        let limit = self.shared.ping_timeout;
        let write = async {
            c.stream.write_all(&c.write_buf).await?;
            c.stream.flush().await
        };
        let result = match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::io(format!("write to {}", self.addr), e)),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("{} took no data for {limit:?}", self.addr),
            )),
        };
        c.write_buf.clear();
        result
    }

    /// The `PING` timer fired: probe a silent connection, or give up on
    /// one whose probe went unanswered.
    async fn ping_timer(&mut self, c: &mut Conn) -> Result<()> {
        let now = Instant::now();
        if now < c.timer(self) {
            return Ok(());
        }
        if c.ping_sent.is_some() {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "no reply to PING from {} within {:?}",
                    self.addr, self.shared.ping_timeout
                ),
            ));
        }
        c.write_buf.clear();
        Cmd::new("PING").write_to(&mut c.write_buf);
        c.in_flight.push_back(Entry::Ping);
        c.ping_sent = Some(now);
        self.flush(c).await
    }

    /// The connection broke: what was on its way goes to the next one.
    /// Restores are rebuilt from the set; unsubscribes are done (a new
    /// connection starts with nothing).
    fn requeue(&mut self, c: &mut Conn) {
        self.send_moved(c);
        let in_flight = mem::take(&mut c.in_flight);
        let jobs = in_flight
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Job { job, .. } => Some(job),
                Entry::Ping => None,
            })
            .chain(mem::take(&mut c.outbox));
        for mut job in jobs {
            if job.restore {
                continue;
            }
            if !job.subscribe {
                if let Some(done) = job.done.take() {
                    let _ = done.send(Ok(()));
                }
                continue;
            }
            let cancelled = mem::take(&mut job.cancelled);
            let before = job.names.len();
            job.names.retain(|n| !cancelled.contains(n));
            if let Some(ticket) = &job.ticket {
                ticket.confirm(before - job.names.len());
            }
            if !job.names.is_empty() {
                self.pending.push_back(job);
            }
        }
    }
}
