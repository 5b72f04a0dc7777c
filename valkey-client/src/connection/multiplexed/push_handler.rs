//! [`PushHandler`]: where a [`Multiplexed`](super::Multiplexed) connection
//! hands its RESP3 out-of-band pushes.

use std::sync::Arc;

use crate::resp::Value;

/// A function called with each RESP3 out-of-band push a
/// [`Multiplexed`](super::Multiplexed) connection receives (set it in
/// [`MultiplexOptions::pushes`](super::MultiplexOptions::pushes)).
///
/// It runs on the connection's driver task, between reading the push and
/// handing out the replies behind it, so it must return quickly and never
/// block: hand the value on, to a bounded channel of any runtime with a
/// non-blocking send, and decide there what to do when the reader falls
/// behind (dropping the push keeps the client's memory bounded).
///
/// ```
/// use valkey_client::{MultiplexOptions, PushHandler};
///
/// let (tx, rx) = std::sync::mpsc::sync_channel(64);
/// let mut options = MultiplexOptions::default();
/// options.pushes = Some(PushHandler::new(move |push| {
///     // Full or closed: the push is dropped.
///     let _ = tx.try_send(push);
/// }));
/// # drop(rx);
/// ```
#[derive(Clone)]
pub struct PushHandler(Arc<dyn Fn(Value) + Send + Sync>);

impl PushHandler {
    /// Calls `handler` with every push.
    pub fn new(handler: impl Fn(Value) + Send + Sync + 'static) -> PushHandler {
        PushHandler(Arc::new(handler))
    }

    pub(super) fn deliver(&self, push: Value) {
        (self.0)(push);
    }
}

impl std::fmt::Debug for PushHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushHandler(..)")
    }
}
