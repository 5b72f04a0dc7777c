//! Administrative commands sent to test servers (readiness probes, cluster setup).
//!
//! Every call opens a short-lived connection, authenticates if needed, sends one
//! command and reads one reply. Server error replies become `io::Error`s.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use valkey_client::Value;

/// Timeout for one administrative round trip.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials used for administrative connections.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auth {
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
}

/// Sends `args` to `127.0.0.1:port` and returns the reply.
pub(crate) async fn call(port: u16, auth: &Auth, args: &[&str]) -> io::Result<Value> {
    tokio::time::timeout(CALL_TIMEOUT, call_inner(port, auth, args))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{args:?} on port {port} timed out"),
            )
        })?
}

/// Sends `args` and returns the reply as text (bulk, simple or verbatim string).
pub(crate) async fn call_str(port: u16, auth: &Auth, args: &[&str]) -> io::Result<String> {
    let value = call(port, auth, args).await?;
    value.as_str().map(str::to_owned).ok_or_else(|| {
        io::Error::other(format!(
            "{args:?} on port {port}: unexpected reply {value:?}"
        ))
    })
}

async fn call_inner(port: u16, auth: &Auth, args: &[&str]) -> io::Result<Value> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut stream = BufReader::new(stream);
    if let Some(password) = &auth.password {
        let mut auth_args = vec!["AUTH"];
        if let Some(user) = &auth.username {
            auth_args.push(user);
        }
        auth_args.push(password);
        send(&mut stream, &auth_args).await?;
        read_value(&mut stream).await?;
    }
    send(&mut stream, args).await?;
    read_value(&mut stream).await
}

async fn send(stream: &mut BufReader<TcpStream>, args: &[&str]) -> io::Result<()> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    stream.get_mut().write_all(&out).await
}

fn protocol_error(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad reply: {what}"))
}

/// Reads one RESP2 value; error replies are returned as `Err`.
async fn read_value(stream: &mut BufReader<TcpStream>) -> io::Result<Value> {
    let mut stack: Vec<(usize, Vec<Value>)> = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line
            .split_at_checked(1)
            .ok_or_else(|| protocol_error("empty line"))?;
        let value = match kind {
            "+" => Value::SimpleString(Bytes::copy_from_slice(rest.as_bytes())),
            "-" => return Err(io::Error::other(rest.to_owned())),
            ":" => Value::Int(rest.parse().map_err(protocol_error)?),
            "$" => {
                let len: i64 = rest.parse().map_err(protocol_error)?;
                if len < 0 {
                    Value::Nil
                } else {
                    let mut buf = vec![0; len as usize + 2];
                    stream.read_exact(&mut buf).await?;
                    buf.truncate(len as usize);
                    Value::BulkString(Bytes::from(buf))
                }
            }
            "*" => {
                let len: i64 = rest.parse().map_err(protocol_error)?;
                if len < 0 {
                    Value::Nil
                } else if len == 0 {
                    Value::Array(Vec::new())
                } else {
                    stack.push((len as usize, Vec::with_capacity(len as usize)));
                    continue;
                }
            }
            other => return Err(protocol_error(format!("unknown type {other:?}"))),
        };
        let mut value = value;
        loop {
            match stack.last_mut() {
                None => return Ok(value),
                Some((want, items)) => {
                    items.push(value);
                    if items.len() < *want {
                        break;
                    }
                    let (_, items) = stack.pop().unwrap_or_default();
                    value = Value::Array(items);
                }
            }
        }
    }
}
