//! [`Connection`]: one socket to one server, its handshake, and requests with
//! replies read in order.
//!
//! A connection reconnects nothing and retries nothing: any failure that leaves
//! the byte stream in doubt (an I/O error, a timeout, a malformed reply, a
//! connection-family error reply) closes it, and every later request fails at
//! once with a [`ErrorKind::Connection`] error that was never sent. The client
//! layer above replaces broken connections.

mod handshake;
mod multiplexed;
mod stream;

use std::collections::VecDeque;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cmd::Cmd;
use crate::config::{ConnectionConfig, Protocol};
use crate::error::{Delivery, Error, ErrorKind, Result};
use crate::pipeline::Pipeline;
use crate::resp::{self, Limits, Value};

pub(crate) use multiplexed::QueuedReply;
pub use multiplexed::{MultiplexOptions, Multiplexed, PushHandler};
pub(crate) use stream::Stream;

/// How much to read at least per `read` call: replies usually fit, and a
/// larger buffer means fewer syscalls under pipelining.
pub(crate) const READ_CHUNK: usize = 16 * 1024;
/// Out-of-band pushes kept for [`Connection::take_pushes`] before the oldest
/// are dropped, so a server that pushes without pause cannot grow us forever.
const MAX_PENDING_PUSHES: usize = 4096;
/// And the most bytes (on the wire) of them kept: a few huge pushes cannot
/// hold the memory of thousands either.
const MAX_PENDING_PUSH_BYTES: usize = 1 << 20;

/// One open, greeted connection to a server.
///
/// ```no_run
/// # async fn demo() -> valkey_client::Result<()> {
/// use valkey_client::{Cmd, Connection, ConnectionConfig};
/// let mut conn = Connection::connect(&ConnectionConfig::tcp("127.0.0.1", 6379)).await?;
/// conn.request(&Cmd::new("SET").arg("greeting").arg("hello")).await?;
/// let v = conn.request(&Cmd::new("GET").arg("greeting")).await?;
/// assert_eq!(v.as_str(), Some("hello"));
/// # Ok(()) }
/// ```
pub struct Connection {
    /// `None` once broken: the socket is closed at once so that the server
    /// (and any proxy) sees the connection go.
    stream: Option<Stream>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    limits: Limits,
    response_timeout: Option<std::time::Duration>,
    protocol: Protocol,
    server_version: Option<String>,
    /// Unread pushes with their sizes on the wire.
    pushes: VecDeque<(Value, usize)>,
    /// The sum of those sizes.
    push_bytes: usize,
    broken_reason: Option<String>,
    addr: String,
}

/// Shows where the connection goes and its state, never its buffers: the
/// write buffer holds the handshake (`HELLO 3 AUTH user <password>`) and
/// every argument sent.
impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("protocol", &self.protocol)
            .field("broken", &self.is_broken())
            .field("pending_pushes", &self.pushes.len())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens a connection and runs the handshake (`HELLO`, authentication,
    /// `CLIENT SETNAME`, `SELECT`, `CLIENT SETINFO`), all within the connect
    /// timeout.
    pub async fn connect(config: &ConnectionConfig) -> Result<Connection> {
        let open = async {
            let stream = Stream::open(config).await?;
            let mut conn = Connection {
                stream: Some(stream),
                read_buf: BytesMut::with_capacity(READ_CHUNK),
                write_buf: BytesMut::with_capacity(1024),
                limits: config.limits.clone(),
                response_timeout: config.response_timeout,
                protocol: Protocol::Resp2,
                server_version: None,
                pushes: VecDeque::new(),
                push_bytes: 0,
                broken_reason: None,
                addr: config.addr.to_string(),
            };
            handshake::run(&mut conn, config).await?;
            Ok(conn)
        };
        match config.connect_timeout {
            None => open.await,
            Some(limit) => tokio::time::timeout(limit, open).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("connecting to {} took longer than {limit:?}", config.addr),
                ))
            }),
        }
    }

    /// Sends one command and waits for its reply. A server error reply comes
    /// back as an `Err` whose kind follows the error code.
    pub async fn request(&mut self, cmd: &Cmd) -> Result<Value> {
        self.check_no_stray_reply()?;
        self.write_buf.clear();
        cmd.write_to(&mut self.write_buf);
        self.flush_write_buf().await?;
        into_result(self.read_reply().await?, self)
    }

    /// Sends several commands in one write and reads their replies in order.
    /// The outer error is a failure of the connection; each inner result is
    /// one command's reply or server error.
    pub async fn pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Result<Value>>> {
        self.check_no_stray_reply()?;
        self.write_buf.clear();
        for cmd in cmds {
            cmd.write_to(&mut self.write_buf);
        }
        self.flush_write_buf().await?;
        self.read_replies(cmds.len()).await
    }

    /// Sends every command of a [`Pipeline`] in one write and reads their
    /// replies in order. The outer error is a failure of the connection;
    /// each inner result is one command's reply or server error.
    pub async fn send_pipeline(&mut self, pipeline: &mut Pipeline) -> Result<Vec<Result<Value>>> {
        self.check_no_stray_reply()?;
        self.write_all(pipeline.encoded()?).await?;
        self.read_replies(pipeline.len()).await
    }

    /// Reads `n` replies in order, each as its command's result.
    async fn read_replies(&mut self, n: usize) -> Result<Vec<Result<Value>>> {
        let mut replies = Vec::with_capacity(n);
        for _ in 0..n {
            let reply = self.read_reply().await?;
            replies.push(into_result(reply, self));
        }
        Ok(replies)
    }

    /// The protocol agreed in the handshake.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The server's version, as reported by `HELLO` (RESP3 only).
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    /// Whether the connection has failed and been closed.
    pub fn is_broken(&self) -> bool {
        self.stream.is_none()
    }

    /// Out-of-band RESP3 pushes received while waiting for replies.
    pub fn take_pushes(&mut self) -> Vec<Value> {
        self.push_bytes = 0;
        self.pushes.drain(..).map(|(push, _)| push).collect()
    }

    /// Looks at bytes already read past the last reply: pushes are set
    /// aside; anything else answers a request never sent, after which no
    /// reply could be trusted to be its request's, so the connection
    /// closes. (Bytes still in the socket are found by the next read.)
    pub(crate) fn check_no_stray_reply(&mut self) -> Result<()> {
        if self.stream.is_none() {
            // Broken already: the request fails unsent, for that reason.
            return Ok(());
        }
        while !self.read_buf.is_empty() {
            let push_arriving = self.read_buf.first() == Some(&b'>');
            let before = self.read_buf.len();
            match resp::decode(&mut self.read_buf, &self.limits) {
                Ok(Some(value @ Value::Push(_))) if self.protocol == Protocol::Resp3 => {
                    self.keep_push(value, before - self.read_buf.len());
                }
                Ok(None) if push_arriving => return Ok(()),
                Ok(_) => {
                    let err = Error::new(
                        ErrorKind::InvalidResponse,
                        format!("{} sent a reply to a request never sent", self.addr),
                    )
                    .with_delivery(Delivery::NotSent);
                    return Err(self.fail(err));
                }
                Err(e) => {
                    let err = Error::from(e).with_delivery(Delivery::NotSent);
                    return Err(self.fail(err));
                }
            }
        }
        Ok(())
    }

    /// Keeps a push for [`Connection::take_pushes`], dropping the oldest
    /// past the bound.
    /// past either bound (count or bytes).
    fn keep_push(&mut self, push: Value, wire_len: usize) {
        self.pushes.push_back((push, wire_len));
        self.push_bytes += wire_len;
        while self.pushes.len() > MAX_PENDING_PUSHES || self.push_bytes > MAX_PENDING_PUSH_BYTES {
            let Some((_, len)) = self.pushes.pop_front() else {
                break;
            };
            self.push_bytes -= len;
            tracing::warn!(addr = %self.addr, "dropping the oldest unread push message");
        }
    }

    /// Hands the open stream over to a [`Multiplexed`] driver, with any bytes
    /// already read. `None` when the connection is broken.
    pub(crate) fn into_parts(self) -> Option<(Stream, BytesMut, Limits, Protocol, String)> {
        let Connection {
            stream,
            read_buf,
            limits,
            protocol,
            addr,
            ..
        } = self;
        stream.map(|s| (s, read_buf, limits, protocol, addr))
    }

    /// Closes the socket and remembers why; later requests fail unsent.
    fn break_with(&mut self, reason: &str) {
        if self.stream.take().is_some() {
            tracing::debug!(addr = %self.addr, reason, "closing connection");
            self.broken_reason = Some(reason.to_string());
        }
    }

    fn fail(&mut self, err: Error) -> Error {
        self.break_with(err.message());
        err
    }

    fn closed_error(&self) -> Error {
        Error::new(
            ErrorKind::Connection,
            format!(
                "connection to {} is closed ({})",
                self.addr,
                self.broken_reason.as_deref().unwrap_or("closed")
            ),
        )
    }

    /// Writes `write_buf` whole.
    async fn flush_write_buf(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.write_buf);
        let result = self.write_all(&buf).await;
        self.write_buf = buf;
        result
    }

    /// Writes `data` whole. Tracks whether anything left, so a failure before
    /// the first byte is known to be unsent.
    async fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let mut written = 0;
        let result = {
            let Some(stream) = self.stream.as_mut() else {
                return Err(self.closed_error());
            };
            async {
                while written < data.len() {
                    match stream.write(&data[written..]).await {
                        Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Ok(n) => written += n,
                        Err(e) => return Err(e),
                    }
                }
                stream.flush().await
            }
            .await
        };
        result.map_err(|e| {
            let delivery = if written == 0 {
                Delivery::NotSent
            } else {
                Delivery::SentNoReply
            };
            let err = Error::io(format!("write to {}", self.addr), e).with_delivery(delivery);
            self.fail(err)
        })
    }

    /// Reads the next reply, setting pushes aside, within the response timeout.
    async fn read_reply(&mut self) -> Result<Value> {
        let result = match self.response_timeout {
            None => self.read_value().await,
            Some(limit) => match tokio::time::timeout(limit, self.read_value()).await {
                Ok(result) => result,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no reply from {} within {limit:?}", self.addr),
                )),
            },
        };
        // After a timeout the late reply would be taken for the next
        // request's: the stream is in doubt, so it goes.
        result.map_err(|e| self.fail(e.with_delivery(Delivery::SentNoReply)))
    }

    async fn read_value(&mut self) -> Result<Value> {
        loop {
            let before = self.read_buf.len();
            match resp::decode(&mut self.read_buf, &self.limits)? {
                Some(value @ Value::Push(_)) if self.protocol == Protocol::Resp3 => {
                    self.keep_push(value, before - self.read_buf.len());
                }
                Some(value) => return Ok(value),
                None => {
                    self.read_buf.reserve(READ_CHUNK);
                    let addr = &self.addr;
                    let mid_reply = !self.read_buf.is_empty();
                    let Some(stream) = self.stream.as_mut() else {
                        return Err(self.closed_error());
                    };
                    match stream.read_buf(&mut self.read_buf).await {
                        Ok(0) if mid_reply => {
                            return Err(Error::new(
                                ErrorKind::Connection,
                                format!("{addr} closed the connection in the middle of a reply"),
                            ));
                        }
                        Ok(0) => {
                            return Err(Error::new(
                                ErrorKind::Connection,
                                format!("{addr} closed the connection"),
                            ));
                        }
                        Ok(_) => {}
                        Err(e) => return Err(Error::io(format!("read from {addr}"), e)),
                    }
                }
            }
        }
    }
}

/// Turns an error reply into an `Err`, closing the connection for the kinds
/// that leave it unusable.
fn into_result(value: Value, conn: &mut Connection) -> Result<Value> {
    match value {
        Value::Error(server) => {
            let err = Error::from_server(server);
            if err.closes_connection() {
                conn.break_with(err.message());
            }
            Err(err)
        }
        value => Ok(value),
    }
}
