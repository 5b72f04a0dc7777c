//! A typed call's first attempt as a named future, so that [`Call`] needs
//! no box on the common path.
//!
//! [`Call`]: crate::Call
//!
//! When a call has nothing to wait for before its request goes out (a live
//! shared connection with room in flight, no deadline, no response timeout)
//! its request is queued at once, and what is left is the reply: a named
//! future the call holds inline. Anything else (a deadline, a blocking or a
//! refused command, a connection to open) takes the general path, boxed.
//! After a failed first attempt the retry runs as on the general path, in
//! the call's span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{CallOptions, Valkey};
use crate::cmd::Cmd;
use crate::command::{self, ConnectionUse};
use crate::connection::QueuedReply;
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::telemetry::CallScope;

/// A call's first attempt, its request already queued.
pub struct FirstAttempt {
    reply: QueuedReply,
    scope: CallScope,
}

impl Valkey {
    /// Queues `cmd` now when its call has nothing to wait for; `None`
    /// otherwise, with nothing queued and nothing counted.
    pub(crate) fn first_attempt(&self, cmd: &Cmd, options: &CallOptions) -> Option<FirstAttempt> {
        let inner = &*self.inner;
        if options.timeout.is_some()
            || inner.request_timeout.is_some()
            || inner.response_timeout.is_some()
            || command::connection_use(cmd) != ConnectionUse::Shared
        {
            return None;
        }
        let reply = inner.keeper.live()?.try_queue(cmd)?;
        let scope = self.call_scope(|| cmd.name(), || cmd.name_bytes());
        Some(FirstAttempt { reply, scope })
    }

    /// The rest of a call whose first attempt failed with `err`: the
    /// retries, as [`Valkey::execute`] runs them.
    pub(crate) async fn after_first_attempt(
        &self,
        cmd: &Cmd,
        options: &CallOptions,
        first: FirstAttempt,
        err: Error,
    ) -> Result<Value> {
        let scope = first.into_scope();
        let result = self
            .retry_shared(cmd, options, None, err, scope.span())
            .await;
        scope.finish(&result);
        result
    }
}

impl FirstAttempt {
    /// The call's span and meter, for what runs after a failed first
    /// attempt.
    pub(crate) fn into_scope(self) -> CallScope {
        self.scope
    }

    /// Polls for the reply. A failure is left to [`Call`](crate::Call),
    /// which hands it to [`Valkey::after_first_attempt`]; the client has
    /// already taken the connection out of use if the failure makes it
    /// suspect.
    pub(crate) fn poll_reply(
        &mut self,
        client: &Valkey,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Value>> {
        let result = ready!(Pin::new(&mut self.reply).poll(cx));
        match &result {
            Ok(_) => self.scope.finish(&result),
            Err(err) => client.after_failure(self.reply.connection(), err),
        }
        Poll::Ready(result)
    }
}
