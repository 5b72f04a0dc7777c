//! [`PrivateRuntime`]: the runtime a blocking client drives its async core on.

use std::future::Future;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};

/// A one-worker tokio runtime shared by a blocking client's clones. Shut
/// down without waiting when the last clone goes, so dropping a client is
/// never an error, wherever it happens.
#[derive(Clone)]
pub(crate) struct PrivateRuntime {
    inner: Arc<Owned>,
}

struct Owned(Option<tokio::runtime::Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        // A plain drop blocks on the worker and panics inside an async
        // context; the background tasks (reconnects, refreshes) need no
        // waiting for.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for PrivateRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateRuntime")
    }
}

impl PrivateRuntime {
    pub(crate) fn new() -> Result<PrivateRuntime> {
        refuse_inside_runtime()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("valkey-blocking")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Connection,
                    format!("cannot start the blocking client's runtime: {e}"),
                )
            })?;
        Ok(PrivateRuntime {
            inner: Arc::new(Owned(Some(rt))),
        })
    }

    /// Runs `future` to completion on this thread, with the runtime's I/O
    /// and timers; an error inside an async context.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        refuse_inside_runtime()?;
        match &self.inner.0 {
            Some(rt) => Ok(rt.block_on(future)),
            None => Err(Error::new(
                ErrorKind::Connection,
                "the blocking client's runtime is shut down",
            )),
        }
    }
}

/// Blocking a runtime's thread would stall its other tasks (tokio panics
/// on it): refuse with an error instead.
fn refuse_inside_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::Config,
            "the blocking client was called inside an async runtime, where it would block the \
             runtime's thread; use the async client (valkey_client::Valkey) there",
        ));
    }
    Ok(())
}
