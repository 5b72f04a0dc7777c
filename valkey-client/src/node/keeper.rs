//! Keeps one live multiplexed connection for a client: opens it on demand,
//! shares one connect attempt among the callers that wait for it, and
//! reconnects in the background with a backoff when it is lost. Connect
//! attempts run in tasks of their own: no caller's future does work that
//! other callers wait for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tokio::sync::watch;

use super::events::{self, Event, EventListener};
use crate::backoff::Backoff;
use crate::config::ConnectionConfig;
use crate::connection::{Connection, MultiplexOptions, Multiplexed};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::telemetry;

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

pub(crate) struct ConnectionKeeper {
    config: ConnectionConfig,
    mux_options: MultiplexOptions,
    /// `None`: no background reconnection; requests reconnect on demand.
    reconnect: Option<ReconnectPolicy>,
    /// Callers that may wait for a connect attempt at once.
    max_waiting: usize,
    listener: Option<EventListener>,
    addr: String,
    current: RwLock<Option<Multiplexed>>,
    connect: Mutex<ConnectState>,
    background_running: AtomicBool,
    /// A connection was opened before: the next one is a reconnect.
    opened_before: AtomicBool,
}

#[derive(Default)]
struct ConnectState {
    /// The connect attempt under way, shared by every caller that needs a
    /// connection meanwhile.
    in_flight: Option<watch::Receiver<Option<Result<Multiplexed>>>>,
    /// Attempts failed in a row.
    failures: u32,
    /// Callers waiting for the attempt under way.
    waiting: usize,
}

impl ConnectionKeeper {
    pub(crate) fn new(
        config: ConnectionConfig,
        mux_options: MultiplexOptions,
        reconnect: Option<ReconnectPolicy>,
        max_waiting: usize,
        listener: Option<EventListener>,
    ) -> ConnectionKeeper {
        ConnectionKeeper {
            addr: config.addr().to_string(),
            config,
            mux_options,
            reconnect,
            max_waiting: max_waiting.max(1),
            listener,
            current: RwLock::new(None),
            connect: Mutex::new(ConnectState::default()),
            background_running: AtomicBool::new(false),
            opened_before: AtomicBool::new(false),
        }
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// No live connection, and the last attempt to open one failed.
    pub(crate) fn is_failing(&self) -> bool {
        self.live().is_none()
            && self
                .connect
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .failures
                > 0
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
            None => self.connect_shared().await,
        }
    }

    /// Notes that a request failed in a way that may mean the connection is
    /// gone; reconnection starts in the background if it is.
    pub(crate) fn on_failure(self: &Arc<Self>, err: &Error) {
        if err.closes_connection() && self.live().is_none() {
            self.ensure_background(err);
        }
    }

    /// Takes a suspect connection (a request on it timed out with its reply
    /// outstanding) out of use: it takes no new request, the requests
    /// already written on it still get their replies, and the next request
    /// opens a fresh connection. So a retry never reuses it, and a
    /// black-holed socket is not kept until TCP keepalive gives up.
    pub(crate) fn retire(&self, conn: &Multiplexed) {
        conn.close();
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|c| c.same_connection(conn)) {
            *current = None;
        }
        tracing::debug!(addr = %self.addr, "retired a connection after a timeout");
    }

    /// Waits for the connect attempt under way, starting one if there is
    /// none. The attempt runs in its own task, so a caller that stops
    /// waiting (or is never polled again) holds up nobody else.
    async fn connect_shared(self: &Arc<Self>) -> Result<Multiplexed> {
        let outcome = {
            let mut state = self.connect.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(conn) = self.live() {
                return Ok(conn);
            }
            if state.waiting >= self.max_waiting {
                return Err(self.too_many_waiting());
            }
            state.waiting += 1;
            match &state.in_flight {
                Some(outcome) => outcome.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    state.in_flight = Some(rx.clone());
                    tokio::spawn(self.clone().connect_attempt(tx, rx.clone()));
                    rx
                }
            }
        };
        let mut waiting = Waiting {
            keeper: self,
            outcome,
            answered: false,
        };
        let result = match waiting.outcome.wait_for(Option::is_some).await {
            Ok(result) => result.clone().unwrap_or_else(|| Err(self.attempt_lost())),
            Err(_) => Err(self.attempt_lost()),
        };
        waiting.answered = true;
        result
    }

    fn too_many_waiting(&self) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!(
                "{} requests already wait for the connection to {} to open; this one fails \
                 at once (see max_waiting_for_connection)",
                self.max_waiting, self.addr
            ),
        )
        .with_delivery(Delivery::NotSent)
    }

    fn attempt_lost(&self) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!(
                "the connect attempt to {} ended without a result",
                self.addr
            ),
        )
    }

    /// One connect attempt, within the connect timeout; its outcome goes to
    /// every caller waiting for it. `this` identifies the attempt.
    async fn connect_attempt(
        self: Arc<Self>,
        outcome: watch::Sender<Option<Result<Multiplexed>>>,
        this: watch::Receiver<Option<Result<Multiplexed>>>,
    ) {
        let result = match Connection::connect(&self.config).await {
            Ok(conn) => Multiplexed::new(conn, self.mux_options.clone()),
            Err(e) => Err(e),
        }
        // Opening failed: nothing of any request was sent.
        .map_err(|e| e.with_delivery(Delivery::NotSent));
        let failed_before = {
            let mut state = self.connect.lock().unwrap_or_else(|p| p.into_inner());
            if state
                .in_flight
                .as_ref()
                .is_some_and(|r| r.same_channel(&this))
            {
                state.in_flight = None;
            }
            let failed_before = state.failures;
            match &result {
                Ok(conn) => {
                    let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                    // An attempt given up on by its callers may finish after
                    // a newer one: the live connection stays.
                    if !current.as_ref().is_some_and(Multiplexed::is_alive) {
                        *current = Some(conn.clone());
                    }
                    state.failures = 0;
                }
                Err(_) => state.failures = state.failures.saturating_add(1),
            }
            failed_before
        };
        if result.is_ok() && self.opened_before.swap(true, Ordering::AcqRel) {
            telemetry::count_reconnect(&self.addr);
            tracing::debug!(addr = %self.addr, "connection reopened");
        }
        match &result {
            Ok(_) if failed_before > 0 => events::emit(
                self.listener.as_ref(),
                Event::Reconnected {
                    addr: &self.addr,
                    failed_attempts: failed_before,
                },
            ),
            Ok(_) => {}
            Err(err) => self.ensure_background(err),
        }
        outcome.send_replace(Some(result));
    }

    fn ensure_background(self: &Arc<Self>, cause: &Error) {
        let Some(reconnect) = &self.reconnect else {
            return;
        };
        if self.background_running.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(addr = %self.addr, error = %cause, "connection lost; reconnecting in the background");
        let weak = Arc::downgrade(self);
        let cause = cause.clone();
        tokio::spawn(reconnect_loop(weak, reconnect.clone(), cause));
    }
}

/// A caller waiting for a shared connect attempt. A caller that stops
/// waiting before the outcome (its deadline passed, its future was dropped)
/// leaves the attempt to finish on its own but no longer shares it with
/// later callers: an attempt stuck in a handshake that a dead link
/// swallowed would otherwise hold every caller until the connect timeout,
/// even after the link came back.
struct Waiting<'a> {
    keeper: &'a ConnectionKeeper,
    outcome: watch::Receiver<Option<Result<Multiplexed>>>,
    answered: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let keeper = self.keeper;
        let mut state = keeper.connect.lock().unwrap_or_else(|p| p.into_inner());
        state.waiting = state.waiting.saturating_sub(1);
        if self.answered {
            return;
        }
        if state
            .in_flight
            .as_ref()
            .is_some_and(|r| r.same_channel(&self.outcome))
        {
            state.in_flight = None;
        }
    }
}

/// Reopens the connection with the reconnect backoff until it is up, the
/// client is dropped, or the configured attempts are spent.
async fn reconnect_loop(weak: Weak<ConnectionKeeper>, policy: ReconnectPolicy, cause: Error) {
    let mut backoff = policy.backoff;
    backoff.reset();
    let mut failures: u32 = 0;
    let mut last_error = cause;
    loop {
        let Some(keeper) = weak.upgrade() else {
            return;
        };
        if keeper.live().is_some() {
            keeper.background_running.store(false, Ordering::Release);
            return;
        }
        failures = failures.saturating_add(1);
        if policy.max_attempts.is_some_and(|max| failures > max) {
            events::emit(
                keeper.listener.as_ref(),
                Event::ReconnectGaveUp {
                    addr: &keeper.addr,
                    attempts: failures - 1,
                    error: &last_error,
                },
            );
            keeper.background_running.store(false, Ordering::Release);
            return;
        }
        let wait = backoff.compute(failures);
        events::emit(
            keeper.listener.as_ref(),
            Event::Reconnecting {
                addr: &keeper.addr,
                attempt: failures,
                wait,
                error: &last_error,
            },
        );
        drop(keeper);
        tokio::time::sleep(wait).await;
        let Some(keeper) = weak.upgrade() else {
            return;
        };
        match keeper.connect_shared().await {
            Ok(_) => {
                keeper.background_running.store(false, Ordering::Release);
                return;
            }
            Err(err) => last_error = err,
        }
    }
}
