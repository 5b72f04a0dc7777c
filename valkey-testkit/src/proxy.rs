//! [`FaultProxy`]: a TCP proxy between a client and a server that injects
//! network faults at command boundaries.
//!
//! Killing a server tests only one kind of failure. Retry logic also has to cope
//! with a connection that dies before a request left, after the server ran it but
//! before the reply came back, in the middle of a reply, or that simply goes
//! silent. The proxy parses the client's byte stream into RESP commands, so such
//! faults can be aimed at one command by name while the handshake passes
//! untouched.

mod relay;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Handle;
use tokio::task::{AbortHandle, JoinHandle};

use crate::ports::free_port;

/// Fresh ports tried when the chosen one was taken by a race.
const PORT_ATTEMPTS: usize = 5;
/// Listen backlog of the proxy's socket.
const BACKLOG: u32 = 1024;
/// How often, and how far apart, re-opening the listener is retried when its
/// port cannot be bound again at once.
const REBIND_ATTEMPTS: usize = 80;
const REBIND_PAUSE: Duration = Duration::from_millis(25);
/// Pause after a failed `accept` (e.g. out of file descriptors), so that a
/// persistent error does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);

/// Which commands an armed fault applies to.
///
/// Handshake commands (`HELLO`, `AUTH`, `CLIENT`, `SELECT`) go through the proxy
/// too, so a fault aimed at "the next command" usually wants a name. Built from a
/// name with `"INCR".into()`; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CommandFilter {
    /// Any command.
    #[default]
    Any,
    /// Only commands with this name (the first element of the command array).
    Named(String),
}

impl CommandFilter {
    /// Whether a command called `name` passes the filter.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            CommandFilter::Any => true,
            CommandFilter::Named(wanted) => wanted.eq_ignore_ascii_case(name),
        }
    }
}

impl From<&str> for CommandFilter {
    fn from(name: &str) -> Self {
        CommandFilter::Named(name.to_ascii_uppercase())
    }
}

impl From<String> for CommandFilter {
    fn from(name: String) -> Self {
        CommandFilter::from(name.as_str())
    }
}

impl From<Option<&str>> for CommandFilter {
    fn from(name: Option<&str>) -> Self {
        name.map_or(CommandFilter::Any, CommandFilter::from)
    }
}

/// A fault that fires once, on one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    BeforeRequest,
    AfterRequest,
    MidReply,
}

/// What the relay does with one command from a client.
enum Verdict {
    Forward,
    /// Black hole: drop it and answer nothing.
    Swallow,
    Fault(Fault),
}

/// Fault settings, shared by every connection.
#[derive(Default)]
struct Control {
    armed: Vec<(Fault, CommandFilter)>,
    latency: Duration,
    black_hole: bool,
    seen: HashMap<String, usize>,
}

/// The listening socket, kept where a synchronous call can close it at once.
#[derive(Default)]
struct Listen {
    listener: Option<TcpListener>,
    refusing: bool,
    /// Set on drop: nothing may re-open the listener after that.
    closed: bool,
    /// The accept task, woken when a listener is put back.
    waker: Option<Waker>,
}

/// State shared by the [`FaultProxy`] handle, its accept task and its
/// connection tasks.
struct Shared {
    port: u16,
    upstream: AtomicU16,
    handle: Handle,
    control: Mutex<Control>,
    listen: Mutex<Listen>,
    /// Abort handles of connection tasks; finished ones are pruned on accept.
    conns: Mutex<Vec<AbortHandle>>,
    accepted: AtomicUsize,
    open: AtomicUsize,
    forwarded: AtomicUsize,
    triggered: AtomicUsize,
    next_conn: AtomicU64,
}

/// Locks a mutex, ignoring poisoning: the data is counters and flags that stay
/// consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Binds a listener on `127.0.0.1:port` with `SO_REUSEADDR`, so that closed
/// connections lingering in `TIME_WAIT` do not keep it from being re-opened.
fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(BACKLOG)
}

impl Shared {
    fn latency(&self) -> Duration {
        lock(&self.control).latency
    }

    fn black_hole(&self) -> bool {
        lock(&self.control).black_hole
    }

    /// Decides the fate of a command named `name`, consuming an armed fault
    /// that matches it.
    fn verdict(&self, name: &str) -> Verdict {
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
    fn count_forwarded(&self, names: &[String]) {
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
    fn abort_connections(&self) {
        let conns = std::mem::take(&mut *lock(&self.conns));
        for conn in conns {
            conn.abort();
        }
    }

    /// Closes the listener now: the OS refuses new connections from here on.
    fn close_listener(&self) {
        let listener = lock(&self.listen).listener.take();
        drop(listener);
    }

    /// Re-opens the listener on the same port after a refusal, retrying in the
    /// background for a while if the port cannot be bound at once.
    fn reopen_listener(self: &Arc<Self>) {
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

async fn accept_loop(shared: Arc<Shared>) {
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

/// A TCP proxy on `127.0.0.1` that relays between clients and one upstream
/// server and injects faults on demand, for testing how a client survives
/// broken connections.
///
/// Each accepted client connection gets its own upstream connection. The
/// client-to-server stream is parsed into RESP commands and forwarded whole
/// command by command, so faults can be aimed at the next command with a given
/// name (see [`CommandFilter`]), on whichever connection it comes. Replies are
/// parsed too, to find the reply of the faulted command; RESP3 pushes are not
/// counted as replies. Reply matching assumes one reply per command, so aim
/// reply faults at ordinary commands, not at `SUBSCRIBE` or `MONITOR` streams.
/// A client stream that is not valid RESP (inline commands) is relayed as raw
/// bytes from then on, uncounted and without faults.
///
/// Tasks run on the tokio runtime that called [`start`](Self::start) (current
/// thread or multi thread). Dropping the proxy closes its listener at once and
/// aborts every connection, closing both sides.
///
/// Memory stays bounded: each direction reads only after the previous chunk is
/// written, and holds at most one incomplete RESP frame plus one read.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use valkey_client::{Cmd, Connection, ConnectionConfig};
/// use valkey_testkit::{FaultProxy, Server, ServerConfig};
///
/// let server = Server::start(ServerConfig::new()).await?;
/// let proxy = FaultProxy::start(server.port()).await?;
/// let mut conn = Connection::connect(&ConnectionConfig::tcp("127.0.0.1", proxy.port())).await?;
///
/// // The server runs the next INCR, but its reply never arrives.
/// proxy.cut_after_request("INCR");
/// assert!(conn.request(&Cmd::new("INCR").arg("counter")).await.is_err());
/// assert_eq!(proxy.commands_seen("INCR"), 1);
/// assert_eq!(proxy.faults_triggered(), 1);
/// # Ok(()) }
/// ```
pub struct FaultProxy {
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in front of the server on `127.0.0.1:upstream`.
    ///
    /// The proxy listens on a free port from the testkit's allocator
    /// ([`free_port`]), retried on another if the chosen one was taken by a race.
    /// Nothing is connected upstream until a client connects.
    pub async fn start(upstream: u16) -> io::Result<FaultProxy> {
        let mut last_error = io::Error::other("no port tried");
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            match bind(port) {
                Ok(listener) => return Ok(FaultProxy::run(listener, port, upstream)),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn run(listener: TcpListener, port: u16, upstream: u16) -> FaultProxy {
        let shared = Arc::new(Shared {
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
        });
        let accept_task = tokio::spawn(accept_loop(Arc::clone(&shared)));
        FaultProxy {
            shared,
            accept_task,
        }
    }

    /// The port the proxy listens on (on 127.0.0.1); point clients here.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// The server port new connections are relayed to.
    pub fn upstream(&self) -> u16 {
        self.shared.upstream.load(Ordering::Relaxed)
    }

    /// Relays connections accepted from now on to `127.0.0.1:port`, e.g. after
    /// the server was restarted on another port. Open connections keep their
    /// upstream.
    pub fn set_upstream(&self, port: u16) {
        self.shared.upstream.store(port, Ordering::Relaxed);
    }

    fn arm(&self, fault: Fault, filter: CommandFilter) {
        lock(&self.shared.control).armed.push((fault, filter));
    }

    /// Arms a fault for the next command matching `filter`, on any connection:
    /// that command is not forwarded, and both its client and upstream
    /// connections are closed. The server never sees the command.
    pub fn cut_before_request(&self, filter: impl Into<CommandFilter>) {
        self.arm(Fault::BeforeRequest, filter.into());
    }

    /// Arms a fault for the next command matching `filter`, on any connection:
    /// the command is forwarded and runs, then both sides are closed before its
    /// reply reaches the client.
    ///
    /// The connection is closed only once the reply has arrived from the server
    /// (and is dropped), so the server has certainly run the command. A command
    /// that gets no reply within 2 s (a blocking command) is cut then.
    pub fn cut_after_request(&self, filter: impl Into<CommandFilter>) {
        self.arm(Fault::AfterRequest, filter.into());
    }

    /// Arms a fault for the next command matching `filter`, on any connection:
    /// the command is forwarded, the first half of its reply's bytes (at least
    /// one, never all) reaches the client, then both sides are closed.
    ///
    /// Like [`cut_after_request`](Self::cut_after_request), a reply that does
    /// not come within 2 s is not waited for.
    pub fn cut_mid_reply(&self, filter: impl Into<CommandFilter>) {
        self.arm(Fault::MidReply, filter.into());
    }

    /// Delays every chunk forwarded in either direction by `latency` (zero
    /// removes the delay). Since each direction reads only after writing, this
    /// also slows bulk transfers to one read per `latency`.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.control).latency = latency;
    }

    /// Turns the black hole on or off. While on, connections are accepted and
    /// what clients send is read, but nothing is forwarded in either direction
    /// and nothing is answered, on new and open connections alike.
    ///
    /// A connection that had any traffic swallowed stays a black hole for good,
    /// since its client waits for replies that will never come; turning the
    /// black hole off relays again on connections that were idle meanwhile and
    /// on new ones.
    pub fn black_hole(&self, on: bool) {
        lock(&self.shared.control).black_hole = on;
    }

    /// Refuses new connections (`ECONNREFUSED`) while `on`, by closing the
    /// listening socket at once; open connections are untouched, but clients
    /// still waiting in the accept backlog are reset.
    ///
    /// Turning it off listens again on the same port. If the port cannot be
    /// bound at once, that is retried in the background for about 2 s.
    pub fn refuse_connections(&self, on: bool) {
        if on {
            lock(&self.shared.listen).refusing = true;
            self.shared.close_listener();
        } else {
            self.shared.reopen_listener();
        }
    }

    /// Closes every open connection now, both the client and the upstream side.
    pub fn reset_all(&self) {
        self.shared.abort_connections();
    }

    /// Clears every armed fault, the latency, the black hole and the refusal
    /// of connections. Counters are kept.
    pub fn heal(&self) {
        {
            let mut control = lock(&self.shared.control);
            control.armed.clear();
            control.latency = Duration::ZERO;
            control.black_hole = false;
        }
        self.shared.reopen_listener();
    }

    /// Client connections accepted since the start.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Client connections open right now (closing is asynchronous, so this can
    /// lag a closed connection by a moment).
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Commands written to the server since the start, on all connections.
    pub fn commands_forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// How many commands named `name` (case-insensitive) were written to the
    /// server, including one faulted after it was forwarded.
    pub fn commands_seen(&self, name: &str) -> usize {
        let name = name.to_ascii_uppercase();
        lock(&self.shared.control)
            .seen
            .get(&name)
            .copied()
            .unwrap_or(0)
    }

    /// How many armed faults have fired.
    pub fn faults_triggered(&self) -> usize {
        self.shared.triggered.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("port", &self.port())
            .field("upstream", &self.upstream())
            .field("open_connections", &self.open_connections())
            .finish_non_exhaustive()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
        {
            let mut listen = lock(&self.shared.listen);
            listen.closed = true;
            listen.waker = None;
        }
        self.shared.close_listener();
        self.shared.abort_connections();
    }
}
