//! Keeps one live multiplexed connection for a client: opens it on demand,
//! shares one connect attempt among the callers that wait for it, and
//! reconnects in the background with a backoff when it is lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use crate::backoff::Backoff;
use crate::client::events::{self, Event, EventListener};
use crate::config::ConnectionConfig;
use crate::connection::{Connection, MultiplexOptions, Multiplexed};
use crate::error::{Delivery, Error, Result};

/// How the connection is reopened after a failure.
#[derive(Debug, Clone)]
pub(crate) struct ReconnectPolicy {
    /// The waits between background attempts. Jittered by default so that
    /// many clients do not reconnect in lockstep.
    pub backoff: Box<dyn Backoff>,
    /// Background attempts before giving up (`None`: never give up). Commands
    /// still try to connect on demand after a give-up.
    pub max_attempts: Option<u32>,
}

pub(crate) struct Manager {
    config: ConnectionConfig,
    mux_options: MultiplexOptions,
    reconnect: ReconnectPolicy,
    listener: Option<EventListener>,
    addr: String,
    current: RwLock<Option<Multiplexed>>,
    /// Held while a connect attempt runs; callers queue behind it.
    connect_lock: tokio::sync::Mutex<ConnectState>,
    /// Connect attempts finished, to tell a caller that an attempt ended
    /// while it waited for the lock (it then shares that attempt's result).
    attempts: AtomicU64,
    background_running: AtomicBool,
}

#[derive(Default)]
struct ConnectState {
    last_error: Option<Error>,
    failures: u32,
}

impl Manager {
    pub(crate) fn new(
        config: ConnectionConfig,
        mux_options: MultiplexOptions,
        reconnect: ReconnectPolicy,
        listener: Option<EventListener>,
    ) -> Manager {
        Manager {
            addr: config.addr().to_string(),
            config,
            mux_options,
            reconnect,
            listener,
            current: RwLock::new(None),
            connect_lock: tokio::sync::Mutex::new(ConnectState::default()),
            attempts: AtomicU64::new(0),
            background_running: AtomicBool::new(false),
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The current connection, when it is alive.
    pub(crate) fn live(&self) -> Option<Multiplexed> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|m| m.is_alive()).cloned()
    }

    /// The live connection, opening one if there is none.
    pub(crate) async fn get(self: &Arc<Self>) -> Result<Multiplexed> {
        match self.live() {
            Some(conn) => Ok(conn),
            None => self.connect_now().await,
        }
    }

    /// Notes that a request failed in a way that may mean the connection is
    /// gone; reconnection starts in the background if it is.
    pub(crate) fn on_failure(self: &Arc<Self>, err: &Error) {
        if err.closes_connection() && self.live().is_none() {
            self.ensure_background(err);
        }
    }

    async fn connect_now(self: &Arc<Self>) -> Result<Multiplexed> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.connect_lock.lock().await;
        if let Some(conn) = self.live() {
            return Ok(conn);
        }
        if self.attempts.load(Ordering::Acquire) != seen {
            if let Some(err) = &state.last_error {
                // An attempt ended while we waited: share its failure rather
                // than hammer a server that just refused.
                return Err(err.clone());
            }
        }
        let result = match Connection::connect(&self.config).await {
            Ok(conn) => Multiplexed::new(conn, self.mux_options.clone()),
            Err(e) => Err(e),
        };
        self.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(conn) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
                if state.failures > 0 || state.last_error.is_some() {
                    events::emit(
                        self.listener.as_ref(),
                        Event::Reconnected {
                            addr: &self.addr,
                            failed_attempts: state.failures,
                        },
                    );
                }
                *state = ConnectState::default();
                Ok(conn)
            }
            Err(err) => {
                // Opening failed: nothing of any request was sent.
                let err = err.with_delivery(Delivery::NotSent);
                state.failures += 1;
                state.last_error = Some(err.clone());
                drop(state);
                self.ensure_background(&err);
                Err(err)
            }
        }
    }

    fn ensure_background(self: &Arc<Self>, cause: &Error) {
        if self.background_running.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(addr = %self.addr, error = %cause, "connection lost; reconnecting in the background");
        let weak = Arc::downgrade(self);
        let cause = cause.clone();
        tokio::spawn(reconnect_loop(weak, self.reconnect.clone(), cause));
    }
}

/// Reopens the connection with the reconnect backoff until it is up, the
/// client is dropped, or the configured attempts are spent.
async fn reconnect_loop(weak: Weak<Manager>, policy: ReconnectPolicy, cause: Error) {
    let mut backoff = policy.backoff;
    backoff.reset();
    let mut failures: u32 = 0;
    let mut last_error = cause;
    loop {
        let Some(manager) = weak.upgrade() else {
            return;
        };
        if manager.live().is_some() {
            manager.background_running.store(false, Ordering::Release);
            return;
        }
        failures = failures.saturating_add(1);
        if policy.max_attempts.is_some_and(|max| failures > max) {
            events::emit(
                manager.listener.as_ref(),
                Event::ReconnectGaveUp {
                    addr: &manager.addr,
                    attempts: failures - 1,
                    error: &last_error,
                },
            );
            manager.background_running.store(false, Ordering::Release);
            return;
        }
        let wait = backoff.compute(failures);
        events::emit(
            manager.listener.as_ref(),
            Event::Reconnecting {
                addr: &manager.addr,
                attempt: failures,
                wait,
                error: &last_error,
            },
        );
        drop(manager);
        tokio::time::sleep(wait).await;
        let Some(manager) = weak.upgrade() else {
            return;
        };
        match manager.connect_now().await {
            Ok(_) => {
                manager.background_running.store(false, Ordering::Release);
                return;
            }
            Err(err) => last_error = err,
        }
    }
}
