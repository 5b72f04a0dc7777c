//! One command through the two loops of the cluster contract
//! (`docs/retries.md`, "Cluster"):
//!
//! - the inner loop follows the cluster's answers on one attempt: `MOVED`
//!   (repoint the slot, refresh in the background), `ASK` (`ASKING` and the
//!   command in one write), `TRYAGAIN` (a short wait), at most 16 times;
//!   a connection failure runs the node's own `retry` (the standalone loop)
//!   and, once that is spent, drops the node from the startup nodes,
//!   re-reads the topology and fails the attempt; so does CLUSTERDOWN.
//! - the outer loop runs 1 + `cluster_error_retry_attempts` attempts of
//!   the whole command after Connection, Timeout and ClusterDown failures.
//!
//! At most once holds throughout: a command that may have run is sent again
//! only when it is safe to repeat or the caller opted in. One deadline
//! bounds every attempt, wait and refresh.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{Instrument, Span};

use super::Shared;
use crate::client::{Mode, Single, Valkey};
use crate::cluster::redirect::{Action, CLUSTER_DOWN_WAIT, MAX_REDIRECTIONS, decide};
use crate::cmd::Cmd;
use crate::command::{self, RepeatSafety};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::node::events::{Event, GiveUpReason, emit};
use crate::node::policy;
use crate::resp::Value;

/// Where a command goes in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// The node that serves this slot.
    Slot { slot: u16, readonly: bool },
    /// Any primary (a keyless command).
    AnyPrimary,
}

/// What a call's attempts add up to, for its error and its give-up event.
struct Tally {
    /// Some attempt may have run the command.
    may_have_run: bool,
    /// Requests tried, on every node, redirections included.
    attempts: u32,
}

/// How an attempt ended when it did not succeed.
enum Stop {
    /// The command fails with this error.
    Return(Error),
    /// This attempt failed; the outer loop may run another.
    FailAttempt(Error),
}

impl Shared {
    /// Runs `cmd` where `place` says, under both loops.
    pub(super) async fn run(
        &self,
        cmd: &Cmd,
        mode: Mode,
        place: Place,
        deadline: Option<Instant>,
        opted_in: bool,
        span: &Span,
    ) -> Result<Value> {
        let first = match self.locate(place, deadline).await {
            // The happy path: one attempt, no loop state built.
            Ok(node) => {
                node.record_server(span);
                match node.attempt_in(cmd, mode, deadline).await {
                    Ok(value) => return Ok(value),
                    Err(err) => Ok((node, err)),
                }
            }
            // A slot in transition: the outer loop waits and reads again.
            Err(err) if err.kind() == ErrorKind::SlotNotCovered => Err(err),
            Err(err) => return Err(err),
        };
        self.recover(cmd, mode, place, first, deadline, opted_in)
            .instrument(span.clone())
            .await
    }

    /// The node that serves `place` now. An empty view, or a slot no node
    /// serves, waits for one topology read first.
    pub(super) async fn locate(&self, place: Place, deadline: Option<Instant>) -> Result<Valkey> {
        if let Some(node) = self.lookup(place) {
            return Ok(node);
        }
        self.refresh_and_wait(deadline).await;
        self.lookup(place).ok_or_else(|| self.no_node(place))
    }

    /// The node that serves `place` in the current view.
    pub(super) fn lookup(&self, place: Place) -> Option<Valkey> {
        let view = self.topology.view();
        match place {
            Place::Slot { slot, readonly } => view
                .node_for_slot(slot, readonly, &self.settings.read_from, &self.turn)
                .cloned(),
            Place::AnyPrimary => view.any_primary(self.next_turn()).cloned(),
        }
    }

    fn no_node(&self, place: Place) -> Error {
        if self.topology.view().map.shards().is_empty() {
            return self.last_refresh_error().unwrap_or_else(|| {
                Error::new(ErrorKind::Cluster, "the cluster topology is not known yet")
            });
        }
        match place {
            Place::Slot { slot, .. } => Error::new(
                ErrorKind::SlotNotCovered,
                format!("no node serves slot {slot}"),
            ),
            Place::AnyPrimary => Error::new(ErrorKind::Cluster, "the cluster has no primary"),
        }
        .with_delivery(Delivery::NotSent)
    }

    /// After the first attempt failed (on a node, or to find one): both
    /// loops.
    pub(super) async fn recover(
        &self,
        cmd: &Cmd,
        mode: Mode,
        place: Place,
        first: Result<(Valkey, Error), Error>,
        deadline: Option<Instant>,
        opted_in: bool,
    ) -> Result<Value> {
        let cycles = self.settings.cluster_error_retry_attempts.saturating_add(1);
        let mut tally = Tally {
            may_have_run: first
                .as_ref()
                .is_ok_and(|(_, err)| policy::may_have_run(err)),
            attempts: 1,
        };
        let mut cycle = 1;
        let mut current = first;
        let (failed, reason) = loop {
            let failed = match current {
                Ok((node, err)) => match self
                    .inner_loop(cmd, mode, node, deadline, opted_in, err, &mut tally)
                    .await
                {
                    Ok(value) => return Ok(value),
                    Err(Stop::Return(err)) => break (err, GiveUpReason::NotRetried),
                    Err(Stop::FailAttempt(err)) => err,
                },
                Err(err) => err,
            };
            let safe = || command::repeat_safety(cmd) != RepeatSafety::NotSafe;
            if !outer_retryable(&failed) {
                break (failed, GiveUpReason::NotRetried);
            }
            if policy::may_have_run(&failed) && !opted_in && !safe() {
                break (failed, GiveUpReason::MayHaveRun);
            }
            if cycle >= cycles {
                break (failed, GiveUpReason::RetriesExhausted);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break (failed, GiveUpReason::DeadlineReached);
            }
            if failed.kind() == ErrorKind::SlotNotCovered {
                // No node serves the slot yet (it is being reassigned):
                // wait as for CLUSTERDOWN; the lookup reads the topology.
                if !fits(deadline, CLUSTER_DOWN_WAIT) {
                    break (failed, GiveUpReason::DeadlineReached);
                }
                tokio::time::sleep(CLUSTER_DOWN_WAIT).await;
            }
            emit(
                self.options.listener.as_ref(),
                Event::Retry {
                    command: cmd.name(),
                    attempt: cycle,
                    wait: Duration::ZERO,
                    error: &failed,
                },
            );
            cycle += 1;
            current = match self.locate(place, deadline).await {
                Ok(node) => {
                    node.record_server_on_current_span();
                    tally.attempts += 1;
                    match node.attempt_in(cmd, mode, deadline).await {
                        Ok(value) => return Ok(value),
                        Err(next) => {
                            tally.may_have_run |= policy::may_have_run(&next);
                            Ok((node, next))
                        }
                    }
                }
                Err(err) if err.kind() == ErrorKind::SlotNotCovered => Err(err),
                Err(err) => break (err, GiveUpReason::NotRetried),
            };
        };
        let failed = if tally.may_have_run && !policy::may_have_run(&failed) {
            failed.with_delivery(Delivery::SentNoReply)
        } else {
            failed
        };
        emit(
            self.options.listener.as_ref(),
            Event::GaveUp {
                command: cmd.name(),
                attempts: tally.attempts,
                reason,
                error: &failed,
            },
        );
        Err(failed)
    }

    /// One attempt of the outer loop, from the failure `err` of its first
    /// try on `node`: follows redirections, runs the node's retry on
    /// connection failures.
    #[allow(clippy::too_many_arguments)]
    async fn inner_loop(
        &self,
        cmd: &Cmd,
        mut mode: Mode,
        mut node: Valkey,
        deadline: Option<Instant>,
        opted_in: bool,
        mut err: Error,
        tally: &mut Tally,
    ) -> Result<Value, Stop> {
        let mut redirections = 0u32;
        let mut tryagains = 0u32;
        loop {
            if is_connection_failure(&err) {
                let mut single = Single::new(&node, cmd, mode);
                let gave_up = match node
                    .retry_until_given_up(cmd.name(), &mut single, deadline, opted_in, err, false)
                    .await
                {
                    Ok(value) => return Ok(value),
                    Err(gave_up) => gave_up,
                };
                tally.may_have_run |= policy::may_have_run(&gave_up.error);
                tally.attempts += gave_up.attempts.saturating_sub(1);
                err = gave_up.error;
                match gave_up.reason {
                    GiveUpReason::MayHaveRun
                    | GiveUpReason::DeadlineReached
                    | GiveUpReason::BudgetExhausted => return Err(Stop::Return(err)),
                    _ if is_connection_failure(&err) => {
                        // The node's retry is spent: drop it, read the
                        // topology again, fail this attempt.
                        let dropped = node.host_port().is_some_and(|(host, port)| {
                            self.topology.drop_startup_node(host, port)
                        });
                        if dropped {
                            emit(
                                self.options.listener.as_ref(),
                                Event::NodeDropped {
                                    addr: node.addr(),
                                    error: &err,
                                },
                            );
                        }
                        self.refresh_and_wait(deadline).await;
                        return Err(Stop::FailAttempt(err));
                    }
                    // The retry ended on another answer (MOVED, ...).
                    _ => {}
                }
            }
            let answered_by = node.host_port().map_or("", |(host, _)| host);
            let action = decide(
                &err,
                answered_by,
                redirections,
                tryagains,
                self.topology.moved_since_refresh(),
                self.settings.reinitialize_steps,
            );
            match action {
                Action::Moved { to, wait_refresh } => {
                    self.topology.repoint(to.slot, &to.host, to.port);
                    node = self.topology.node(&to.host, to.port);
                    self.redirected(cmd, to.slot, &node, false);
                    let generation = self.gate.trigger();
                    if wait_refresh {
                        self.wait_refresh(generation, deadline).await;
                        // The refresh may know better than the MOVED.
                        if let Some(fresh) = self.lookup(Place::Slot {
                            slot: to.slot,
                            readonly: false,
                        }) {
                            node = fresh;
                        }
                    }
                    if mode == Mode::Asking {
                        mode = Mode::Shared;
                    }
                }
                Action::Ask(to) => {
                    if matches!(mode, Mode::Blocking(_)) {
                        // A blocking command has no ASKING connection.
                        return Err(Stop::Return(err));
                    }
                    node = self.topology.node(&to.host, to.port);
                    self.redirected(cmd, to.slot, &node, true);
                    mode = Mode::Asking;
                }
                Action::TryAgain(wait) => {
                    if !fits(deadline, wait) {
                        return Err(Stop::Return(err));
                    }
                    tokio::time::sleep(wait).await;
                    tryagains += 1;
                }
                Action::FailAttempt(wait) => {
                    if fits(deadline, wait) {
                        tokio::time::sleep(wait).await;
                    }
                    self.refresh_and_wait(deadline).await;
                    return Err(Stop::FailAttempt(err));
                }
                Action::Return if redirections >= MAX_REDIRECTIONS && is_redirection(&err) => {
                    return Err(Stop::Return(too_many_redirections(err)));
                }
                Action::Return => return Err(Stop::Return(err)),
            }
            redirections += 1;
            tally.attempts += 1;
            match node.attempt_in(cmd, mode, deadline).await {
                Ok(value) => return Ok(value),
                Err(next) => {
                    tally.may_have_run |= policy::may_have_run(&next);
                    err = next;
                }
            }
        }
    }

    fn redirected(&self, cmd: &Cmd, slot: u16, to: &Valkey, ask: bool) {
        to.record_server_on_current_span();
        emit(
            self.options.listener.as_ref(),
            Event::Redirected {
                command: cmd.name(),
                slot,
                to: to.addr(),
                ask,
            },
        );
    }

    /// Requests a topology read and waits for it, within the deadline.
    pub(super) async fn refresh_and_wait(&self, deadline: Option<Instant>) {
        match deadline {
            None => self.gate.refresh().await,
            Some(_) => {
                let generation = self.gate.trigger();
                self.wait_refresh(generation, deadline).await;
            }
        }
    }

    async fn wait_refresh(&self, generation: u64, deadline: Option<Instant>) {
        let wait = self.gate.wait(generation);
        match deadline {
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline, wait).await;
            }
            None => wait.await,
        }
    }
}

/// A failure that says the node could not be reached or did not answer:
/// its `retry` applies, then the cluster's.
fn is_connection_failure(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Connection
            | ErrorKind::Timeout
            | ErrorKind::BusyLoading
            | ErrorKind::MaxConnections
    )
}

/// The failures after which the outer loop runs the command again.
fn outer_retryable(err: &Error) -> bool {
    is_connection_failure(err)
        || matches!(err.kind(), ErrorKind::ClusterDown | ErrorKind::MasterDown)
}

fn is_redirection(err: &Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::Moved | ErrorKind::Ask | ErrorKind::TryAgain
    )
}

fn too_many_redirections(last: Error) -> Error {
    Error::new(
        ErrorKind::Cluster,
        format!(
            "still redirected after {MAX_REDIRECTIONS} redirections (TTL exhausted); the last \
             answer was: {last}"
        ),
    )
    .with_delivery(Delivery::NotSent)
}

/// Whether waiting `wait` leaves time before the deadline.
fn fits(deadline: Option<Instant>, wait: Duration) -> bool {
    deadline.is_none_or(|d| d.saturating_duration_since(Instant::now()) > wait)
}
