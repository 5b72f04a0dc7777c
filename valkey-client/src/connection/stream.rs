//! [`Stream`]: one byte stream to a server, over TCP, a Unix socket or TLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio_rustls::client::TlsStream;

use crate::config::{Addr, ConnectionConfig};
use crate::error::{Error, ErrorKind, Result};

/// An open byte stream to a server. Crate-private: its variants are tokio
/// and rustls types, which are no part of the public API.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// A Unix domain socket.
    #[cfg(unix)]
    Unix(UnixStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Opens the socket (and TLS, when configured) described by `config`.
    pub(crate) async fn open(config: &ConnectionConfig) -> Result<Stream> {
        match (&config.addr, &config.tls) {
            #[cfg(unix)]
            (Addr::Unix(path), None) => UnixStream::connect(path)
                .await
                .map(Stream::Unix)
                .map_err(|e| Error::io(format!("connect to {}", config.addr), e)),
            #[cfg(unix)]
            (Addr::Unix(_), Some(_)) => Err(Error::new(
                ErrorKind::Config,
                "TLS over a Unix socket is not supported",
            )),
            (Addr::Tcp { host, port }, None) => {
                let tcp = connect_tcp(host, *port, config.tcp_keepalive).await?;
                Ok(Stream::Tcp(tcp))
            }
            (Addr::Tcp { host, port }, Some(tls)) => {
                // A bad TLS configuration is the caller's error: report it
                // before touching the network.
                let name = tls.server_name_override().unwrap_or(host);
                let name = ServerName::try_from(name.to_string()).map_err(|e| {
                    Error::new(ErrorKind::Tls, format!("invalid server name `{name}`"))
                        .with_source(e)
                })?;
                let connector = tokio_rustls::TlsConnector::from(tls.rustls_config()?);
                let tcp = connect_tcp(host, *port, config.tcp_keepalive).await?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| handshake_error(&config.addr, e))?;
                Ok(Stream::Tls(Box::new(stream)))
            }
        }
    }
}

/// A handshake the server's certificate (or ours) failed is a TLS error,
/// which no retry gets past; anything else on the wire is a connection
/// error like any other.
fn handshake_error(addr: &Addr, e: std::io::Error) -> Error {
    let context = format!("TLS handshake with {addr}");
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        Error::new(ErrorKind::Tls, context).with_source(e)
    } else {
        Error::io(context, e)
    }
}

async fn connect_tcp(host: &str, port: u16, keepalive: Option<Duration>) -> Result<TcpStream> {
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::io(format!("resolve {host}"), e))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                // Small requests must leave at once: auto-pipelining batches
                // them itself, Nagle would only add latency.
                tcp.set_nodelay(true)
                    .map_err(|e| Error::io("set TCP_NODELAY", e))?;
                if let Some(idle) = keepalive {
                    let ka = socket2::TcpKeepalive::new()
                        .with_time(idle)
                        .with_interval(idle.div_f32(4.0).max(Duration::from_secs(1)));
                    socket2::SockRef::from(&tcp)
                        .set_tcp_keepalive(&ka)
                        .map_err(|e| Error::io("set TCP keepalive", e))?;
                }
                return Ok(tcp);
            }
            Err(e) => last = Some(Error::io(format!("connect to {addr}"), e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::new(
            ErrorKind::Connection,
            format!("{host} resolved to no address"),
        )
    }))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
