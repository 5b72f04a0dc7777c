//! Pipelines across the cluster: split by node, written to every node
//! before any reply is awaited, results put back in the caller's order.
//! Commands that came back redirected, or lost to a failure, run again on
//! their own through the cluster's loop, in order, under the usual rules.

use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::Span;

use super::Shared;
use super::single::Place;
use crate::client::{CallOptions, Mode, Valkey};
use crate::cluster::redirect::{MAX_REDIRECTIONS, Redirect};
use crate::cluster::route::{Route, route};
use crate::cmd::Cmd;
use crate::command::{self, RepeatSafety};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::node::policy;
use crate::pipeline::Pipeline;
use crate::resp::Value;

/// Commands bound for one node, with their places in the pipeline.
struct Batch {
    node: Valkey,
    pipe: Pipeline,
    positions: Vec<usize>,
}

impl Shared {
    pub(super) async fn pipeline(
        &self,
        pipe: &mut Pipeline,
        options: &CallOptions,
    ) -> Result<Vec<Result<Value>>> {
        pipe.encoded()?;
        let usage = pipe.shared_use()?;
        usage.refuse_blocking()?;
        let deadline = self.deadline(options);
        let opted_in = self.opted_in(options);
        let cmds = (0..pipe.len())
            .map(|i| pipe.command(i))
            .collect::<Option<Vec<Cmd>>>()
            .ok_or_else(|| {
                Error::new(ErrorKind::Data, "a pipeline command could not be read back")
            })?;
        if usage.transaction {
            return self.transaction(pipe, &cmds, deadline, opted_in).await;
        }
        let mut results: Vec<Option<Result<Value>>> = (0..cmds.len()).map(|_| None).collect();
        let mut batches: Vec<Batch> = Vec::new();
        for (i, cmd) in cmds.iter().enumerate() {
            let node = match route(cmd) {
                Err(err) => {
                    results[i] = Some(Err(err));
                    continue;
                }
                Ok(Route::Slot { slot, readonly }) => self.lookup(Place::Slot { slot, readonly }),
                Ok(Route::AnyNode { .. }) => self.lookup(Place::AnyPrimary),
                // Split and fan-out commands run alone, in their turn.
                Ok(_) => None,
            };
            match node {
                Some(node) => {
                    let batch = match batches.iter().position(|b| b.node.addr() == node.addr()) {
                        Some(b) => &mut batches[b],
                        None => {
                            batches.push(Batch {
                                node,
                                pipe: Pipeline::new(),
                                positions: Vec::new(),
                            });
                            batches.last_mut().expect("just pushed")
                        }
                    };
                    batch.pipe.add(cmd);
                    batch.positions.push(i);
                }
                None => {
                    // Everything before it runs first, then it.
                    self.run_batches(&cmds, &mut batches, &mut results, deadline, opted_in)
                        .await;
                    results[i] = Some(self.run_alone(cmd, deadline, opted_in).await);
                }
            }
        }
        self.run_batches(&cmds, &mut batches, &mut results, deadline, opted_in)
            .await;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::new(ErrorKind::Cluster, "not run"))))
            .collect())
    }

    /// Sends every batch at once (each node gets one write), then re-runs,
    /// in pipeline order, the commands that may be run again.
    async fn run_batches(
        &self,
        cmds: &[Cmd],
        batches: &mut Vec<Batch>,
        results: &mut [Option<Result<Value>>],
        deadline: Option<Instant>,
        opted_in: bool,
    ) {
        if batches.is_empty() {
            return;
        }
        let sends = batches
            .iter_mut()
            .map(|b| b.node.pipeline_until(&mut b.pipe, deadline, opted_in));
        let outcomes = join_all(sends).await;
        let mut again: Vec<usize> = Vec::new();
        for (batch, outcome) in batches.drain(..).zip(outcomes) {
            match outcome {
                Ok(replies) => {
                    for (position, reply) in batch.positions.into_iter().zip(replies) {
                        if reply
                            .as_ref()
                            .is_err_and(|e| runs_again(e, &cmds[position], opted_in))
                        {
                            again.push(position);
                        }
                        results[position] = Some(reply);
                    }
                }
                Err(err) => {
                    for position in batch.positions {
                        if runs_again(&err, &cmds[position], opted_in) {
                            again.push(position);
                        }
                        results[position] = Some(Err(err.clone()));
                    }
                }
            }
        }
        again.sort_unstable();
        for position in again {
            let cmd = &cmds[position];
            let place = match route(cmd) {
                Ok(Route::Slot { slot, readonly }) => Place::Slot { slot, readonly },
                _ => Place::AnyPrimary,
            };
            let rerun = self
                .run(cmd, Mode::Shared, place, deadline, opted_in, &Span::none())
                .await;
            // A command that may have run before keeps saying so.
            let earlier_may_have_run = results[position]
                .as_ref()
                .is_some_and(|r| r.as_ref().is_err_and(policy::may_have_run));
            results[position] = Some(rerun.map_err(|e| {
                if earlier_may_have_run && !policy::may_have_run(&e) {
                    e.with_delivery(Delivery::SentNoReply)
                } else {
                    e
                }
            }));
        }
    }

    /// A split or fan-out command inside a pipeline.
    async fn run_alone(
        &self,
        cmd: &Cmd,
        deadline: Option<Instant>,
        opted_in: bool,
    ) -> Result<Value> {
        match route(cmd)? {
            Route::SplitBySlot { group } => {
                self.split_by_slot(cmd, group, deadline, opted_in).await
            }
            Route::AllPrimaries(p) => self.fan_out(cmd, false, p, deadline, opted_in).await,
            Route::AllNodes(p) => self.fan_out(cmd, true, p, deadline, opted_in).await,
            _ => {
                self.run(
                    cmd,
                    Mode::Shared,
                    Place::AnyPrimary,
                    deadline,
                    opted_in,
                    &Span::none(),
                )
                .await
            }
        }
    }

    /// `MULTI ... EXEC` whose keys are all in one slot, sent whole to that
    /// slot's primary; after a `MOVED` (nothing ran: the server aborts the
    /// transaction) it is sent whole to the new owner.
    async fn transaction(
        &self,
        pipe: &mut Pipeline,
        cmds: &[Cmd],
        deadline: Option<Instant>,
        opted_in: bool,
    ) -> Result<Vec<Result<Value>>> {
        let mut slot = None;
        for cmd in cmds {
            if let Route::Slot { slot: s, .. } = route(cmd)? {
                match slot {
                    Some(other) if other != s => {
                        return Err(Error::new(
                            ErrorKind::CrossSlot,
                            "the keys of a MULTI ... EXEC transaction hash to different slots; \
                             in a cluster a transaction runs within one slot: give the keys a \
                             common hash tag",
                        ));
                    }
                    _ => slot = Some(s),
                }
            }
        }
        let place = slot.map_or(Place::AnyPrimary, |slot| Place::Slot {
            slot,
            readonly: false,
        });
        let mut node = self.locate(place, deadline).await?;
        for _ in 0..MAX_REDIRECTIONS {
            let results = node.pipeline_until(pipe, deadline, opted_in).await?;
            let moved = results.iter().find_map(|r| match r {
                Err(e) if e.kind() == ErrorKind::Moved => {
                    let host = node.host_port().map_or("", |(h, _)| h);
                    Redirect::parse(e.message(), host)
                }
                _ => None,
            });
            let Some(to) = moved else {
                return Ok(results);
            };
            self.topology.repoint(to.slot, &to.host, to.port);
            self.gate.trigger();
            node = self.topology.node(&to.host, to.port);
        }
        Err(Error::new(
            ErrorKind::Cluster,
            format!("a transaction still redirected after {MAX_REDIRECTIONS} redirections"),
        ))
    }
}

/// Whether a pipelined command that failed with `err` runs again through
/// the cluster's loop: a redirection or a refusal proves it did not run; a
/// lost reply allows it only when the command is safe to repeat or the
/// caller opted in.
fn runs_again(err: &Error, cmd: &Cmd, opted_in: bool) -> bool {
    match err.kind() {
        ErrorKind::Moved
        | ErrorKind::Ask
        | ErrorKind::TryAgain
        | ErrorKind::ClusterDown
        | ErrorKind::MasterDown => true,
        ErrorKind::Connection
        | ErrorKind::Timeout
        | ErrorKind::BusyLoading
        | ErrorKind::MaxConnections => {
            !policy::may_have_run(err)
                || opted_in
                || command::repeat_safety(cmd) != RepeatSafety::NotSafe
        }
        _ => false,
    }
}
