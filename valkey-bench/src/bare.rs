//! Bare request loops with no client at all: the command bytes written by
//! hand, replies framed just enough to know where each ends. They are the
//! floor for any Rust client on this machine: what a blocking `std::net`
//! socket and a plain tokio socket reach for the same workload, so the
//! tables can tell a client's own cost from the machine's round trip.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Result, VALUE};

/// How long the spinning loop busy-waits after each send before it blocks.
pub const SPIN: Duration = Duration::from_micros(8);

/// Which socket a bare loop uses.
pub enum BareSocket {
    /// A blocking `std::net::TcpStream` (it blocks the benchmark's thread,
    /// as a synchronous client would).
    Std(std::net::TcpStream),
    /// A tokio `TcpStream`, awaited directly.
    Tokio(tokio::net::TcpStream),
}

/// A socket, a request buffer and a reply buffer.
pub struct Bare {
    socket: BareSocket,
    out: Vec<u8>,
    buf: BytesMut,
    /// Where the blocking socket reads into (it cannot fill spare capacity).
    scratch: Box<[u8; 16 * 1024]>,
    /// Busy-wait [`SPIN`] after each send.
    spin: bool,
}

impl Bare {
    /// Connects to `127.0.0.1:port` with `TCP_NODELAY`, as clients do.
    /// `spin`: busy-wait [`SPIN`] after each send.
    pub async fn connect(port: u16, blocking: bool, spin: bool) -> Result<Bare> {
        let socket = if blocking {
            let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_nodelay(true)?;
            BareSocket::Std(s)
        } else {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.set_nodelay(true)?;
            BareSocket::Tokio(s)
        };
        Ok(Bare {
            socket,
            out: Vec::with_capacity(16 * 1024),
            buf: BytesMut::with_capacity(16 * 1024),
            scratch: Box::new([0; 16 * 1024]),
            spin,
        })
    }

    /// `GET key`: the value, `None` for a nil reply.
    pub async fn get(&mut self, key: &str) -> Result<Option<Bytes>> {
        self.out.clear();
        push_command(&mut self.out, &[b"GET", key.as_bytes()]);
        self.exchange(1).await?;
        let end = reply_len(&self.buf).ok_or("incomplete reply")?;
        let reply = self.buf.split_to(end).freeze();
        match reply.first() {
            Some(b'$') if reply.get(1) == Some(&b'-') => Ok(None),
            Some(b'$') => {
                let start = reply.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
                Ok(Some(reply.slice(start..reply.len() - 2)))
            }
            _ => Err(format!("GET: unexpected reply {reply:?}").into()),
        }
    }

    /// `SET key <64-byte value>` for every key, written at once.
    pub async fn set_all(&mut self, keys: &[String]) -> Result<()> {
        self.out.clear();
        for key in keys {
            push_command(&mut self.out, &[b"SET", key.as_bytes(), VALUE]);
        }
        self.exchange(keys.len()).await?;
        for _ in 0..keys.len() {
            let end = reply_len(&self.buf).ok_or("incomplete reply")?;
            let reply = self.buf.split_to(end);
            if !reply.starts_with(b"+OK") {
                return Err(format!("SET: unexpected reply {reply:?}").into());
            }
        }
        Ok(())
    }

    /// Writes `out`, then reads until `replies` whole replies are buffered.
    async fn exchange(&mut self, replies: usize) -> Result<()> {
        match &mut self.socket {
            BareSocket::Std(s) => s.write_all(&self.out)?,
            BareSocket::Tokio(s) => s.write_all(&self.out).await?,
        }
        if self.spin {
            let start = Instant::now();
            while start.elapsed() < SPIN {
                std::hint::spin_loop();
            }
        }
        while count_replies(&self.buf, replies) < replies {
            let n = match &mut self.socket {
                BareSocket::Std(s) => {
                    let n = s.read(&mut self.scratch[..])?;
                    self.buf.extend_from_slice(&self.scratch[..n]);
                    n
                }
                BareSocket::Tokio(s) => {
                    self.buf.reserve(16 * 1024);
                    s.read_buf(&mut self.buf).await?
                }
            };
            if n == 0 {
                return Err("the server closed the connection".into());
            }
        }
        Ok(())
    }
}

/// Appends one command in RESP.
fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// The length of the first reply in `buf` when it is complete. Knows only
/// what GET and SET answer: simple strings, errors, integers, bulk strings.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line = buf.windows(2).position(|w| w == b"\r\n")? + 2;
    if buf.first() != Some(&b'$') {
        return Some(line);
    }
    let len: i64 = std::str::from_utf8(&buf[1..line - 2]).ok()?.parse().ok()?;
    if len < 0 {
        return Some(line);
    }
    let end = line + len as usize + 2;
    (buf.len() >= end).then_some(end)
}

/// How many whole replies `buf` starts with, counting up to `want`.
fn count_replies(buf: &[u8], want: usize) -> usize {
    let mut at = 0;
    let mut n = 0;
    while n < want {
        match reply_len(&buf[at..]) {
            Some(len) => {
                at += len;
                n += 1;
            }
            None => break,
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_the_replies_of_get_and_set() {
        assert_eq!(reply_len(b"+OK\r\n"), Some(5));
        assert_eq!(reply_len(b"$-1\r\n"), Some(5));
        assert_eq!(reply_len(b"$3\r\nabc\r\n+OK"), Some(9));
        assert_eq!(reply_len(b"$3\r\nab"), None);
        assert_eq!(reply_len(b"+O"), None);
        assert_eq!(count_replies(b"+OK\r\n+OK\r\n+O", 5), 2);
    }
}
