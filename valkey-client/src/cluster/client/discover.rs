//! Reading the cluster's layout: `CLUSTER SHARDS` (`CLUSTER SLOTS` on
//! servers without it) from a few nodes at once, taking the view most of
//! them agree on.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::Shared;
use super::view::node_key;
use crate::cluster::topology::{SlotMap, parse_shards, parse_slots};
use crate::cmd::Cmd;
use crate::error::{Error, ErrorKind, Result};
use crate::node::events::{Event, emit};

/// Nodes asked at once.
const ASKED_AT_ONCE: usize = 3;

/// After the first answer, how long the others of a batch may take.
const AGREEMENT_GRACE: Duration = Duration::from_millis(50);

/// How long one node may take to answer (connecting included).
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the layout and installs it. On failure the view in use stays and
/// the error says why.
pub(super) async fn refresh(shared: &Shared) -> Result<()> {
    let topology = &shared.topology;
    topology.refresh_started();
    let sources = topology.refresh_sources();
    let mut last_error = Error::new(ErrorKind::Cluster, "no node to read the topology from");
    for batch in sources.chunks(ASKED_AT_ONCE) {
        let mut reads: FuturesUnordered<_> =
            batch
                .iter()
                .map(|(host, port)| async move {
                    (node_key(host, *port), read(shared, host, *port).await)
                })
                .collect();
        let mut views: Vec<(String, SlotMap)> = Vec::new();
        // Once one node has answered, the others get a short grace: a
        // frozen node must not hold the refresh for its whole timeout.
        let mut grace: Option<tokio::time::Instant> = None;
        loop {
            let next = match grace {
                Some(until) => match tokio::time::timeout_at(until, reads.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
                None => reads.next().await,
            };
            let Some((from, result)) = next else { break };
            match result {
                Ok(map) => {
                    views.push((from, map));
                    grace.get_or_insert_with(|| tokio::time::Instant::now() + AGREEMENT_GRACE);
                }
                Err(err) => last_error = err,
            }
        }
        if let Some((from, map)) = agreed(views) {
            let shards = map.shards().len();
            let uncovered = map.uncovered();
            let changed = topology.install(map);
            emit(
                shared.options.listener.as_ref(),
                Event::TopologyRefreshed {
                    from: &from,
                    shards,
                    changed,
                    uncovered,
                },
            );
            return Ok(());
        }
    }
    topology.refresh_failed();
    emit(
        shared.options.listener.as_ref(),
        Event::TopologyRefreshFailed { error: &last_error },
    );
    Err(last_error)
}

/// The view the most nodes gave; among equals, the one that covers the
/// most slots. A node that does not know the whole layout yet (it just
/// joined, or it was cut off) is outvoted.
pub(super) fn agreed(views: Vec<(String, SlotMap)>) -> Option<(String, SlotMap)> {
    let votes: Vec<usize> = views
        .iter()
        .map(|(_, map)| views.iter().filter(|(_, o)| o.same_owners(map)).count())
        .collect();
    views
        .into_iter()
        .zip(votes)
        .max_by_key(|((_, map), votes)| {
            (*votes, usize::from(crate::cluster::SLOTS) - map.uncovered())
        })
        .map(|(view, _)| view)
}

/// The layout one node reports, within [`READ_TIMEOUT`].
async fn read(shared: &Shared, host: &str, port: u16) -> Result<SlotMap> {
    let node = shared.topology.node(host, port);
    let shards = Cmd::new("CLUSTER").arg("SHARDS");
    let read = async {
        let answered_by = host;
        match node.attempt(&shards, None).await {
            Ok(reply) => parse_shards(&reply, answered_by),
            Err(err) if is_unknown_subcommand(&err) => {
                let reply = node
                    .attempt(&Cmd::new("CLUSTER").arg("SLOTS"), None)
                    .await?;
                parse_slots(&reply, answered_by)
            }
            Err(err) => Err(err),
        }
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(shards) => Ok(SlotMap::new(shards?)),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("{host}:{port} did not report the cluster layout within {READ_TIMEOUT:?}"),
        )),
    }
}

fn is_unknown_subcommand(err: &Error) -> bool {
    err.kind() == ErrorKind::Response
        && (err.message().contains("nknown subcommand") || err.message().contains("nknown command"))
}
