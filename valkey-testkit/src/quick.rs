//! One-line setup for examples and doc tests: a default standalone server
//! and its URL, from async code or from code without a runtime.

use std::io;

use crate::config::ServerConfig;
use crate::server::Server;

/// Starts a standalone server with the default configuration and returns it
/// with its URL (`valkey://127.0.0.1:<port>`). The process is killed when
/// the [`Server`] is dropped, so keep it alive as long as the URL is used.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let (server, url) = valkey_testkit::start_server().await?;
/// assert_eq!(url, format!("valkey://127.0.0.1:{}", server.port()));
/// drop(server); // stops it
/// # Ok(()) }
/// ```
pub async fn start_server() -> io::Result<(Server, String)> {
    let server = Server::start(ServerConfig::new()).await?;
    let url = server.url();
    Ok((server, url))
}

/// [`start_server`] for code that runs no async runtime (a test of the
/// blocking clients, a `fn main` without tokio): the server is started on a
/// short-lived runtime of its own. Called from inside a tokio runtime it
/// returns an error, as blocking there would stall the runtime: use
/// [`start_server`].
///
/// ```
/// let (_server, url) = valkey_testkit::start_server_blocking()?;
/// let client = valkey_client::blocking::Valkey::from_url(&url).unwrap();
/// assert_eq!(client.request::<String>(&valkey_client::Cmd::new("PING")).unwrap(), "PONG");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn start_server_blocking() -> io::Result<(Server, String)> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(io::Error::other(
            "start_server_blocking called inside a tokio runtime: use start_server().await",
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(start_server())
}
