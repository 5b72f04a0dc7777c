//! The subscriber of a cluster: a router task that owns one link for plain
//! channels and patterns (on any node) and one link per primary that owns
//! subscribed shard channels, and moves shard channels when their slot
//! moves.
//!
//! A shard channel is placed on the primary the cluster client's view
//! gives for its slot. It is placed again when its link reports it lost:
//! the server dropped it on its own (`sunsubscribe` push: the slot left
//! that node), or answered `MOVED` (placed where the reply points). Its
//! new owner comes from a topology read, and a node that just dropped a
//! channel is not believed to own it again until a few reads say so (a
//! read can lag behind the cluster). Besides, after every topology read
//! and every second, each placement is checked against the view, so a
//! channel on a node that died, or was demoted without telling (a replica
//! accepts `SSUBSCRIBE` for its primary's slots), moves to the new owner.
//! While a link cannot reach its node, the topology is read every 250 ms
//! (its node may be failing over), so its channels move soon after a
//! replica takes over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod place;

use super::link::report::{Report, Reports};
use super::link::{self, LinkCmd, LinkHandle, Target};
use super::message::Kind;
use super::options::SubscriberOptions;
use super::sleep_until_some;
use super::state::{CloseOnDrop, Outage, Shared, TaskGuard, Ticket};
use super::subscriber::Subscriber;
use crate::cluster::{ValkeyCluster, key_slot};
use crate::config::Addr;
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};

/// Requests waiting for the router, at most.
const COMMAND_QUEUE: usize = 64;

/// How often placements are checked against the client's view.
const VERIFY_EVERY: Duration = Duration::from_secs(1);

/// While a link is down, the topology is read this often (its node may be
/// failing over: the new owner is learned soon after it takes over).
const DOWN_REFRESH_EVERY: Duration = Duration::from_millis(250);

/// Topology reads after which a node that dropped a channel is believed
/// again when the view still names it.
const DISTRUST_READS: u32 = 4;

/// The waits between placement rounds while a channel has no owner: 50 ms
/// doubling, at most 2 s.
fn round_wait(rounds: u32) -> Duration {
    Duration::from_millis(50u64 << rounds.min(6)).min(Duration::from_secs(2))
}

/// Makes the subscriber of `cluster`: its plain link connects now (to the
/// first primary that answers).
pub(crate) async fn subscriber(
    cluster: &ValkeyCluster,
    options: &SubscriberOptions,
) -> Result<Subscriber> {
    if cluster.primary_addrs().is_empty() {
        cluster.refresh_topology().await?;
    }
    let shared = Shared::new(
        options,
        cluster.event_listener(),
        cluster.response_timeout(),
        cluster.reconnect_backoff(),
    );
    let mut last_error = Error::new(ErrorKind::Cluster, "the cluster view has no primary");
    let mut first = None;
    for (host, port) in cluster.primary_addrs() {
        let config = cluster.node_config(&host, port);
        match Connection::connect(&config).await {
            Ok(conn) => {
                first = Some((config, conn));
                break;
            }
            Err(err) => last_error = err,
        }
    }
    let (config, conn) = first.ok_or(last_error)?;
    let plain = link::spawn(
        shared.clone(),
        Target::AnyNode {
            cluster: cluster.clone(),
            current: config,
        },
        Some(conn),
        None,
        (),
    );
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let router = Router {
        cluster: cluster.clone(),
        shared: shared.clone(),
        commands: rx,
        reports: Arc::new(Reports::default()),
        plain,
        links: HashMap::new(),
        placed: HashMap::new(),
        unplaced: Vec::new(),
        rounds: 0,
        retry_at: None,
        down_refresh_at: None,
        refresh: None,
        refresh_again: false,
    };
    let close = CloseOnDrop(shared.clone());
    let task = tokio::spawn(async move {
        let _close = close;
        router.run().await;
    });
    Ok(Subscriber::new(shared, tx, TaskGuard(task)))
}

/// A link to the primary that owns some subscribed shard channels.
struct ShardLink {
    handle: LinkHandle,
    /// Since when it is disconnected, and why.
    down: Option<Outage>,
}

/// A shard channel waiting to be placed.
struct Unplaced {
    name: Bytes,
    ticket: Option<Arc<Ticket>>,
    outage: Option<Outage>,
    /// Where a `MOVED` pointed: used once.
    redirect: Option<(String, u16)>,
    /// The node that dropped it, not trusted for a few reads.
    distrust: Option<String>,
    reads: u32,
}

struct Router {
    cluster: ValkeyCluster,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<LinkCmd>,
    reports: Arc<Reports>,
    plain: LinkHandle,
    /// By `host:port`.
    links: HashMap<String, ShardLink>,
    /// Each subscribed shard channel and the link it is on.
    placed: HashMap<Bytes, String>,
    unplaced: Vec<Unplaced>,
    /// Placement rounds in a row that left channels without an owner.
    rounds: u32,
    retry_at: Option<Instant>,
    /// The next topology read while a link is down.
    down_refresh_at: Option<Instant>,
    refresh: Option<(TaskGuard, oneshot::Receiver<()>)>,
    refresh_again: bool,
}

enum Wake {
    Command(Option<LinkCmd>),
    Reports,
    Refreshed,
    Verify,
    Retry,
    DownRefresh,
}

fn key(host: &str, port: u16) -> String {
    Addr::Tcp {
        host: host.to_string(),
        port,
    }
    .to_string()
}

impl Router {
    async fn run(mut self) {
        let mut verify = tokio::time::interval(VERIFY_EVERY);
        verify.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry_at = self.retry_at;
            let down_refresh_at = self.down_refresh_at;
            let wake = tokio::select! {
                cmd = self.commands.recv() => Wake::Command(cmd),
                _ = self.reports.wait() => Wake::Reports,
                _ = refreshed(&mut self.refresh) => Wake::Refreshed,
                _ = verify.tick() => Wake::Verify,
                _ = sleep_until_some(retry_at) => Wake::Retry,
                _ = sleep_until_some(down_refresh_at) => Wake::DownRefresh,
            };
            match wake {
                Wake::Command(None) => return,
                Wake::Command(Some(cmd)) => self.command(cmd).await,
                Wake::Reports => self.read_reports().await,
                Wake::Refreshed => {
                    self.refresh = None;
                    for item in &mut self.unplaced {
                        item.reads += 1;
                    }
                    if std::mem::take(&mut self.refresh_again) {
                        self.request_refresh();
                    }
                    self.verify().await;
                    self.place().await;
                }
                Wake::Verify => self.verify().await,
                Wake::DownRefresh => {
                    self.down_refresh_at = None;
                    if self.links.values().any(|link| link.down.is_some()) {
                        self.request_refresh();
                        self.down_refresh_at = Some(Instant::now() + DOWN_REFRESH_EVERY);
                    }
                }
                Wake::Retry => {
                    self.retry_at = None;
                    self.place().await;
                    if !self.unplaced.is_empty() {
                        self.request_refresh();
                    }
                }
            }
        }
    }

    async fn command(&mut self, cmd: LinkCmd) {
        match cmd {
            LinkCmd::Subscribe {
                kind: Kind::Shard,
                names,
                ticket,
                ..
            } => {
                self.unplaced.extend(names.into_iter().map(|name| Unplaced {
                    name,
                    ticket: ticket.clone(),
                    outage: None,
                    redirect: None,
                    distrust: None,
                    reads: 0,
                }));
                self.place().await;
            }
            LinkCmd::Unsubscribe {
                kind: Kind::Shard,
                names,
                done,
                user,
            } => self.unsubscribe(names, done, user).await,
            other => {
                // Channels and patterns: the plain link's.
                if let Err(mpsc::error::SendError(cmd)) = self.plain.commands.send(other).await {
                    fail(cmd);
                }
            }
        }
    }

    /// Unsubscribes shard channels on whichever links hold them; `done`
    /// once every link confirmed.
    async fn unsubscribe(
        &mut self,
        names: Vec<Bytes>,
        done: Option<oneshot::Sender<Result<()>>>,
        user: bool,
    ) {
        if user {
            self.shared.unregister(Kind::Shard, &names);
        }
        self.unplaced.retain(|item| {
            let gone = names.contains(&item.name);
            if gone && let Some(ticket) = &item.ticket {
                ticket.confirm(1);
            }
            !gone
        });
        let mut by_link: HashMap<String, Vec<Bytes>> = HashMap::new();
        for name in names {
            if let Some(addr) = self.placed.remove(&name) {
                by_link.entry(addr).or_default().push(name);
            }
        }
        let mut answers = Vec::new();
        for (addr, names) in by_link {
            let Some(link) = self.links.get(&addr) else {
                continue;
            };
            let (tx, rx) = oneshot::channel();
            let cmd = LinkCmd::Unsubscribe {
                kind: Kind::Shard,
                names,
                done: Some(tx),
                user,
            };
            if link.handle.commands.send(cmd).await.is_ok() {
                answers.push(rx);
            }
        }
        self.drop_idle_links();
        let Some(done) = done else {
            return;
        };
        // The links answer on their own time; a small task gathers them
        // (it ends when the last one answers or is dropped).
        tokio::spawn(async move {
            let mut result = Ok(());
            for answer in answers {
                if let Ok(Err(err)) = answer.await {
                    result = Err(err);
                }
            }
            let _ = done.send(result);
        });
    }

    async fn read_reports(&mut self) {
        let mut moved_without_target = false;
        for report in self.reports.take() {
            match report {
                Report::Moved {
                    from,
                    names,
                    redirect,
                    ticket,
                    outage,
                } => {
                    if let (Some((host, port)), Some(name)) = (&redirect, names.first()) {
                        // What the cluster client does with a MOVED: the
                        // view follows it, so checks agree with it.
                        self.cluster.note_moved(key_slot(name), host, *port);
                    }
                    for name in names {
                        if self.placed.get(&name) != Some(&from) {
                            // Moved on (or unsubscribed) meanwhile.
                            continue;
                        }
                        self.placed.remove(&name);
                        moved_without_target |= redirect.is_none();
                        self.unplaced.push(Unplaced {
                            name,
                            ticket: ticket.clone(),
                            outage: outage.clone(),
                            redirect: redirect.clone(),
                            distrust: redirect.is_none().then(|| from.clone()),
                            reads: 0,
                        });
                    }
                }
                Report::Down { addr, error } => {
                    if let Some(link) = self.links.get_mut(&addr) {
                        link.down.get_or_insert(Outage {
                            since: Instant::now(),
                            cause: error,
                        });
                        self.request_refresh();
                        self.down_refresh_at
                            .get_or_insert_with(|| Instant::now() + DOWN_REFRESH_EVERY);
                    }
                }
                Report::Up { addr } => {
                    if let Some(link) = self.links.get_mut(&addr) {
                        link.down = None;
                    }
                }
            }
        }
        if moved_without_target {
            self.request_refresh();
        }
        self.drop_idle_links();
        self.place().await;
    }

    /// Reads the topology in the background (one read at a time; a
    /// request during a read asks for one more after it).
    fn request_refresh(&mut self) {
        if self.refresh.is_some() {
            self.refresh_again = true;
            return;
        }
        let cluster = self.cluster.clone();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            if let Err(err) = cluster.refresh_topology().await {
                tracing::debug!(error = %err, "subscriber: topology read failed");
            }
            let _ = tx.send(());
        });
        self.refresh = Some((TaskGuard(task), rx));
    }
}

/// Answers a request whose link is gone.
fn fail(cmd: LinkCmd) {
    let err = || Error::new(ErrorKind::Connection, "the subscriber's link has ended");
    match cmd {
        LinkCmd::Subscribe {
            ticket: Some(ticket),
            ..
        } => ticket.fail(err()),
        LinkCmd::Unsubscribe {
            done: Some(done), ..
        } => {
            let _ = done.send(Err(err()));
        }
        _ => {}
    }
}

/// Waits for the topology read under way; forever without one.
async fn refreshed(refresh: &mut Option<(TaskGuard, oneshot::Receiver<()>)>) {
    match refresh {
        Some((_, done)) => {
            let _ = done.await;
        }
        None => std::future::pending().await,
    }
}
