//! A typed call's first attempt on a cluster as a named future, as on a
//! standalone client (`client/first.rs`): a command for one slot whose
//! node's connection is live with room, and no deadline, goes out at once;
//! after a failure the cluster's two loops take over, boxed.

use std::task::{Context, Poll};

use tracing::Instrument;

use super::ValkeyCluster;
use super::single::Place;
use crate::client::{CallOptions, FirstAttempt, Mode, Valkey};
use crate::cluster::route::{Route, route};
use crate::cmd::Cmd;
use crate::error::{Error, Result};
use crate::resp::Value;

/// A cluster call's first attempt, its request queued on the slot's node.
pub struct ClusterFirstAttempt {
    node: Valkey,
    place: Place,
    first: FirstAttempt,
}

impl ValkeyCluster {
    /// Queues `cmd` on its slot's node now when the call has nothing to
    /// wait for; `None` otherwise, with nothing queued and nothing counted.
    pub(crate) fn first_attempt(
        &self,
        cmd: &Cmd,
        options: &CallOptions,
    ) -> Option<ClusterFirstAttempt> {
        let shared = &*self.inner;
        if options.timeout.is_some() || shared.options.request_timeout.is_some() {
            return None;
        }
        let Ok(Route::Slot { slot, readonly }) = route(cmd) else {
            return None;
        };
        let place = Place::Slot { slot, readonly };
        let node = shared.lookup(place)?;
        // The node checks the rest: a shared-connection command, no
        // response timeout, a live connection with room.
        let first = node.first_attempt(cmd, options)?;
        Some(ClusterFirstAttempt { node, place, first })
    }

    /// Polls a first attempt for its reply.
    pub(crate) fn poll_first_attempt(
        first: &mut ClusterFirstAttempt,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Value>> {
        first.first.poll_reply(&first.node, cx)
    }

    /// The rest of a call whose first attempt failed with `err`: the
    /// cluster's loops, from that failure on that node, in the call's span.
    pub(crate) async fn after_first_attempt(
        &self,
        cmd: &Cmd,
        options: &CallOptions,
        first: ClusterFirstAttempt,
        err: Error,
    ) -> Result<Value> {
        let ClusterFirstAttempt { node, place, first } = first;
        let scope = first.into_scope();
        let opted_in = self.inner.opted_in(options);
        let result = (self.inner)
            .recover(cmd, Mode::Shared, place, Ok((node, err)), None, opted_in)
            .instrument(scope.span().clone())
            .await;
        scope.finish(&result);
        result
    }
}
