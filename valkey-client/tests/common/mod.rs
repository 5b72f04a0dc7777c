//! Helpers shared by the integration tests.

use valkey_testkit::{Server, ServerConfig};

/// A server that puts every write on disk before replying (AOF, fsync
/// always), so a kill or restart loses nothing: tests can then require that
/// each read sees the write before it.
pub async fn durable_server() -> Server {
    Server::start(
        ServerConfig::new()
            .config("appendonly", "yes")
            .config("appendfsync", "always"),
    )
    .await
    .expect("start a durable valkey-server")
}
