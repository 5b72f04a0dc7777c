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
mod shared;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::ports::free_port;
use shared::{Fault, Shared, accept_loop, bind, lock};

/// Fresh ports tried when the chosen one was taken by a race.
const PORT_ATTEMPTS: usize = 5;

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
        let shared = Shared::new(listener, port, upstream);
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
    /// on new ones. To silence just the connections open now, use
    /// [`black_hole_open_connections`](Self::black_hole_open_connections).
    pub fn black_hole(&self, on: bool) {
        lock(&self.shared.control).black_hole = on;
    }

    /// Turns every connection open now into a black hole, for good: what
    /// its client sends is read and dropped, nothing reaches the server and
    /// nothing comes back (replies already on their way included). New
    /// connections, and connections still waiting in the accept backlog, relay
    /// as usual, and so do later ones: unlike [`black_hole`](Self::black_hole)
    /// this is not a switch. [`heal`](Self::heal) does not revive them.
    ///
    /// It stands for a flow that a NAT or firewall dropped while new ones
    /// still get through: a client that keeps using its connection waits
    /// forever, one that gives up on it and reconnects recovers at once.
    pub fn black_hole_open_connections(&self) {
        self.shared.black_hole_accepted();
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
