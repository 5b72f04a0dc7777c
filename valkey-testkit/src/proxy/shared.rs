//! The proxy's shared state: fault settings, counters, the listening socket
//! (kept where a synchronous call can close it) and the accept loop.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use super::CommandFilter;
use super::relay;

/// Listen backlog of the proxy's socket.
const BACKLOG: u32 = 1024;
/// How often, and how far apart, re-opening the listener is retried when its
/// port cannot be bound again at once.
const REBIND_ATTEMPTS: usize = 80;
const REBIND_PAUSE: Duration = Duration::from_millis(25);
/// Pause after a failed `accept` (e.g. out of file descriptors), so that a
/// persistent error does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// A fault that fires once, on one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    BeforeRequest,
    AfterRequest,
    MidReply,
}

/// What the relay does with one command from a client.
pub(super) enum Verdict {
    Forward,
    /// Black hole: drop it and answer nothing.
    Swallow,
    Fault(Fault),
}

/// Fault settings, shared by every connection.
#[derive(Default)]
pub(super) struct Control {
    pub(super) armed: Vec<(Fault, CommandFilter)>,
    pub(super) latency: Duration,
    pub(super) black_hole: bool,
    pub(super) seen: HashMap<String, usize>,
}

/// The listening socket, kept where a synchronous call can close it at once.
#[derive(Default)]
pub(super) struct Listen {
    pub(super) listener: Option<TcpListener>,
    pub(super) refusing: bool,
    /// Set on drop: nothing may re-open the listener after that.
    pub(super) closed: bool,
    /// The accept task, woken when a listener is put back.
    pub(super) waker: Option<Waker>,
}

/// State shared by the `FaultProxy` handle, its accept task and its
/// connection tasks.
pub(super) struct Shared {
    pub(super) port: u16,
    pub(super) upstream: AtomicU16,
    pub(super) handle: Handle,
    pub(super) control: Mutex<Control>,
    pub(super) listen: Mutex<Listen>,
    /// Abort handles of connection tasks; finished ones are pruned on accept.
    pub(super) conns: Mutex<Vec<AbortHandle>>,
    pub(super) accepted: AtomicUsize,
    pub(super) open: AtomicUsize,
    pub(super) forwarded: AtomicUsize,
    pub(super) triggered: AtomicUsize,
    pub(super) next_conn: AtomicU64,
    /// Connections with a lower id are black holes for good
    /// (`FaultProxy::black_hole_open_connections`).
    pub(super) black_hole_below: AtomicU64,
}

/// Locks a mutex, ignoring poisoning: the data is counters and flags that stay
/// consistent even if a holder panicked.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Binds a listener on `127.0.0.1:port` with `SO_REUSEADDR`, so that closed
/// connections lingering in `TIME_WAIT` do not keep it from being re-opened.
pub(super) fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(BACKLOG)
}

impl Shared {
    /// State for a proxy listening with `listener` on `port`, whose tasks run
    /// on the current runtime.
    pub(super) fn new(listener: TcpListener, port: u16, upstream: u16) -> Arc<Shared> {
        Arc::new(Shared {
            port,
            upstream: AtomicU16::new(upstream),
            handle: Handle::current(),
            control: Mutex::new(Control::default()),
            listen: Mutex::new(Listen {
                listener: Some(listener),
                ..Listen::default()
            }),
            conns: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            triggered: AtomicUsize::new(0),
            next_conn: AtomicU64::new(0),
            black_hole_below: AtomicU64::new(0),
        })
    }

    pub(super) fn latency(&self) -> Duration {
        lock(&self.control).latency
    }

    pub(super) fn black_hole(&self) -> bool {
        lock(&self.control).black_hole
    }

    /// Makes every connection accepted so far a black hole for good.
    pub(super) fn black_hole_accepted(&self) {
        // Ids are handed out in accept order, so every connection accepted
        // so far has a lower one.
        let next = self.next_conn.load(Ordering::Relaxed);
        self.black_hole_below.fetch_max(next, Ordering::Relaxed);
    }

    /// Whether connection `id` was black-holed by `black_hole_accepted`.
    pub(super) fn black_holed(&self, id: u64) -> bool {
        id < self.black_hole_below.load(Ordering::Relaxed)
    }

    /// Decides the fate of a command named `name`, consuming an armed fault
    /// that matches it.
    pub(super) fn verdict(&self, name: &str) -> Verdict {
        let mut control = lock(&self.control);
        if control.black_hole {
            return Verdict::Swallow;
        }
        let Some(index) = control.armed.iter().position(|(_, f)| f.matches(name)) else {
            return Verdict::Forward;
        };
        let (fault, _) = control.armed.remove(index);
        self.triggered.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(port = self.port, command = name, ?fault, "fault triggered");
        Verdict::Fault(fault)
    }

    /// Counts commands that were written upstream.
    pub(super) fn count_forwarded(&self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        self.forwarded.fetch_add(names.len(), Ordering::Relaxed);
        let mut control = lock(&self.control);
        for name in names {
            *control.seen.entry(name.clone()).or_default() += 1;
        }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut listen = lock(&self.listen);
        if !listen
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            listen.waker = Some(cx.waker().clone());
        }
        match &listen.listener {
            Some(listener) => listener.poll_accept(cx),
            None => Poll::Pending,
        }
    }

    fn spawn_connection(self: &Arc<Self>, client: TcpStream) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        // Moved into the task, so it is dropped (and the count fixed) however
        // the task ends, also when aborted before its first poll.
        let guard = OpenGuard(Arc::clone(self));
        let task = self.handle.spawn(async move {
            let guard = guard;
            relay::serve(&guard.0, client, id).await;
        });
        let mut conns = lock(&self.conns);
        conns.retain(|conn| !conn.is_finished());
        conns.push(task.abort_handle());
    }

    /// Aborts every connection task; their sockets close as they are dropped.
    pub(super) fn abort_connections(&self) {
        let conns = std::mem::take(&mut *lock(&self.conns));
        for conn in conns {
            conn.abort();
        }
    }

    /// Closes the listener now: the OS refuses new connections from here on.
    pub(super) fn close_listener(&self) {
        let listener = lock(&self.listen).listener.take();
        drop(listener);
    }

    /// Re-opens the listener on the same port after a refusal, retrying in the
    /// background for a while if the port cannot be bound at once.
    pub(super) fn reopen_listener(self: &Arc<Self>) {
        let mut listen = lock(&self.listen);
        if !listen.refusing || listen.closed {
            return;
        }
        listen.refusing = false;
        if self.try_install(&mut listen).is_ok() {
            return;
        }
        drop(listen);
        let shared = Arc::clone(self);
        self.handle.spawn(async move {
            let mut last_error = None;
            for _ in 0..REBIND_ATTEMPTS {
                tokio::time::sleep(REBIND_PAUSE).await;
                let mut listen = lock(&shared.listen);
                if listen.refusing || listen.closed || listen.listener.is_some() {
                    return;
                }
                match shared.try_install(&mut listen) {
                    Ok(()) => return,
                    Err(e) => last_error = Some(e),
                }
            }
            tracing::warn!(
                port = shared.port,
                "fault proxy could not re-open its port: {last_error:?}"
            );
        });
    }

    fn try_install(&self, listen: &mut Listen) -> io::Result<()> {
        let _runtime = self.handle.enter();
        let listener = bind(self.port)?;
        listen.listener = Some(listener);
        if let Some(waker) = &listen.waker {
            waker.wake_by_ref();
        }
        Ok(())
    }
}

/// Keeps [`FaultProxy::open_connections`] right, whichever way a connection
/// task ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn accept_loop(shared: Arc<Shared>) {
    loop {
        match std::future::poll_fn(|cx| shared.poll_accept(cx)).await {
            Ok((client, _)) => shared.spawn_connection(client),
            Err(e) => {
                tracing::debug!(port = shared.port, "fault proxy accept failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}
