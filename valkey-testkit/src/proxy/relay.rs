//! One proxied connection: the two relay directions and where faults strike.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use valkey_client::resp::{self, Limits, Value};

use super::shared::{Fault, Shared, Verdict, lock};

/// Room made for each read.
const READ_CHUNK: usize = 16 * 1024;
/// How long a command faulted after forwarding waits for its reply before the
/// connection is cut anyway.
const REPLY_WAIT: Duration = Duration::from_secs(2);

/// State the two directions of one connection share.
struct ConnState {
    /// The connection's id, in accept order.
    id: u64,
    /// Set once traffic was swallowed by the black hole: the stream is out of
    /// step for good, so this connection relays nothing any more.
    swallowed: AtomicBool,
    /// A reply fault: the index of the reply it strikes (counting replies on
    /// this connection from 0), and which fault.
    target: Mutex<Option<(u64, Fault)>>,
}

impl ConnState {
    fn new(id: u64) -> ConnState {
        ConnState {
            id,
            swallowed: AtomicBool::new(false),
            target: Mutex::new(None),
        }
    }

    /// Whether to drop traffic: the black hole is on, or was on for this
    /// connection, or this connection was black-holed on its own.
    fn swallows(&self, shared: &Shared) -> bool {
        if self.swallowed.load(Ordering::Relaxed) {
            return true;
        }
        if shared.black_hole() || shared.black_holed(self.id) {
            self.swallowed.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// Splits a byte stream into RESP frames, keeping each frame's exact bytes.
///
/// `decode` consumes the frame it returns, so the bytes are kept twice: `raw`
/// to forward, `parse` to decode. Invalid RESP switches to raw relaying.
struct Framer {
    raw: BytesMut,
    parse: BytesMut,
    parsing: bool,
    limits: Limits,
}

impl Framer {
    fn new() -> Framer {
        Framer {
            raw: BytesMut::new(),
            parse: BytesMut::new(),
            parsing: true,
            limits: Limits::default(),
        }
    }

    /// Reads once; `Ok(0)` at end of stream.
    async fn fill(&mut self, from: &mut (impl AsyncRead + Unpin)) -> std::io::Result<usize> {
        self.raw.reserve(READ_CHUNK);
        let start = self.raw.len();
        let n = from.read_buf(&mut self.raw).await?;
        if self.parsing {
            self.parse.extend_from_slice(&self.raw[start..]);
        }
        Ok(n)
    }

    /// The next complete frame: its bytes, and its value unless relaying raw.
    fn next(&mut self) -> Option<(Bytes, Option<Value>)> {
        if self.raw.is_empty() {
            return None;
        }
        if !self.parsing {
            return Some((self.raw.split().freeze(), None));
        }
        let before = self.parse.len();
        match resp::decode(&mut self.parse, &self.limits) {
            Ok(Some(value)) => {
                let len = before - self.parse.len();
                Some((self.raw.split_to(len).freeze(), Some(value)))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::debug!("fault proxy relaying raw bytes from here on: {e}");
                self.parsing = false;
                self.parse = BytesMut::new();
                Some((self.raw.split().freeze(), None))
            }
        }
    }
}

/// A command's name: its first element, uppercased (empty if there is none).
fn command_name(value: &Value) -> String {
    let first = match value {
        Value::Array(items) => items.first(),
        _ => None,
    };
    match first {
        Some(Value::BulkString(name) | Value::SimpleString(name)) => {
            String::from_utf8_lossy(name).to_ascii_uppercase()
        }
        _ => String::new(),
    }
}

/// Relays one client connection until either side closes, an I/O error
/// happens or a fault cuts it; both sockets close when this returns.
pub(super) async fn serve(shared: &Shared, mut client: TcpStream, id: u64) {
    let port = shared.upstream.load(Ordering::Relaxed);
    let mut upstream = match TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(id, port, "fault proxy cannot reach upstream: {e}");
            if shared.black_hole() {
                // Answer nothing, not even a close.
                let mut sink = Framer::new();
                sink.parsing = false;
                while matches!(sink.fill(&mut client).await, Ok(n) if n > 0) {
                    sink.raw.clear();
                }
            }
            return;
        }
    };
    // Forwarded chunks are whole commands and replies: send them at once.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let conn = ConnState::new(id);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    tokio::select! {
        () = requests(shared, &conn, client_read, upstream_write) => {}
        () = replies(shared, &conn, upstream_read, client_write) => {}
    }
    tracing::trace!(id, "fault proxy connection closed");
}

/// Writes `chunks` after the configured latency; `false` on a write error.
async fn forward(shared: &Shared, to: &mut (impl AsyncWrite + Unpin), chunks: &[Bytes]) -> bool {
    if chunks.is_empty() {
        return true;
    }
    let latency = shared.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    for chunk in chunks {
        if to.write_all(chunk).await.is_err() {
            return false;
        }
    }
    true
}

/// Client to server: whole commands, with request faults applied.
async fn requests(
    shared: &Shared,
    conn: &ConnState,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) {
    let mut framer = Framer::new();
    // Commands forwarded on this connection so far.
    let mut sent: u64 = 0;
    loop {
        let mut batch = Vec::new();
        let mut names = Vec::new();
        let mut fault = None;
        while fault.is_none() {
            let Some((bytes, value)) = framer.next() else {
                break;
            };
            if conn.swallows(shared) {
                continue;
            }
            let Some(value) = value else {
                batch.push(bytes);
                continue;
            };
            let name = command_name(&value);
            match shared.verdict(&name) {
                Verdict::Forward => {}
                Verdict::Swallow => {
                    conn.swallowed.store(true, Ordering::Relaxed);
                    continue;
                }
                Verdict::Fault(Fault::BeforeRequest) => {
                    fault = Some(Fault::BeforeRequest);
                    continue;
                }
                Verdict::Fault(reply_fault) => {
                    let index = sent + names.len() as u64;
                    *lock(&conn.target) = Some((index, reply_fault));
                    fault = Some(reply_fault);
                }
            }
            batch.push(bytes);
            names.push(name);
        }
        if !forward(shared, &mut to, &batch).await {
            return;
        }
        sent += names.len() as u64;
        shared.count_forwarded(&names);
        match fault {
            Some(Fault::BeforeRequest) => return,
            // The reply side cuts when the reply comes; this is the backstop.
            Some(_) => {
                tokio::time::sleep(REPLY_WAIT).await;
                return;
            }
            None => {}
        }
        match framer.fill(&mut from).await {
            Ok(0) => {
                // Half-close: pass it on and let the replies finish.
                let _ = to.shutdown().await;
                std::future::pending::<()>().await;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

/// Server to client: whole replies, with reply faults applied.
async fn replies(
    shared: &Shared,
    conn: &ConnState,
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) {
    let mut framer = Framer::new();
    // Replies received on this connection so far (pushes excluded).
    let mut received: u64 = 0;
    loop {
        let mut batch = Vec::new();
        let mut cut = false;
        while !cut {
            let Some((bytes, value)) = framer.next() else {
                break;
            };
            if conn.swallows(shared) {
                continue;
            }
            let is_reply = value.is_some_and(|v| !matches!(v, Value::Push(_)));
            if is_reply {
                let index = received;
                received += 1;
                let target = *lock(&conn.target);
                if let Some((at, fault)) = target
                    && at == index
                {
                    cut = true;
                    if fault == Fault::MidReply {
                        let keep = (bytes.len() / 2).max(1);
                        batch.push(bytes.slice(..keep));
                    }
                    continue;
                }
            }
            batch.push(bytes);
        }
        if !forward(shared, &mut to, &batch).await {
            return;
        }
        if cut {
            // FIN after the partial reply, so the client reads it before EOF.
            let _ = to.shutdown().await;
            return;
        }
        match framer.fill(&mut from).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
