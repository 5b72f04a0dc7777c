//! The standalone rows: faults injected through the test kit's fault proxy
//! and process control, under the workload of `harness`.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use valkey_client::{Cmd, Connection, ErrorKind, ExponentialBackoff, Retry, Valkey, ValkeyBuilder};
use valkey_testkit::{FaultProxy, Server, ServerConfig};

use crate::harness::{self, Client, Row};

/// The calls' deadline in every standalone scenario.
const DEADLINE: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(300);
const MAX_OPS: usize = 3000;

/// A durable server (AOF, fsync always: acknowledged means on disk) with a
/// fault proxy in front of it.
async fn durable_behind_proxy(extra: &[(&str, &str)]) -> (Server, FaultProxy) {
    let mut config = ServerConfig::new()
        .config("appendonly", "yes")
        .config("appendfsync", "always");
    for (k, v) in extra {
        config = config.config(*k, *v);
    }
    let server = Server::start(config).await.unwrap();
    let proxy = FaultProxy::start(server.port()).await.unwrap();
    (server, proxy)
}

/// The client under test: the documented retry on Connection, Timeout and
/// BusyLoading, a response timeout and a deadline.
fn client(port: u16) -> ValkeyBuilder {
    Valkey::builder()
        .host("127.0.0.1")
        .port(port)
        .retry(Retry::new(ExponentialBackoff::default(), 6))
        .retry_on_error([ErrorKind::BusyLoading])
        .response_timeout(Some(RESPONSE_TIMEOUT))
        .request_timeout(Some(DEADLINE))
}

/// A client straight to the server, for checking the data afterwards.
async fn checker(server: &Server) -> Client {
    Client::Standalone(
        Valkey::builder()
            .host("127.0.0.1")
            .port(server.port())
            .retry(Retry::new(ExponentialBackoff::default(), 10))
            .build_lazy(),
    )
}

/// Runs the workload through the proxy, injects `fault` after 300 ms, lets
/// it run 800 ms more, and checks.
async fn with_proxy<F, Fut>(
    (prefix, name): (&str, &str),
    builder: ValkeyBuilder,
    server: &Server,
    fault: F,
) -> Row
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let client = Client::Standalone(builder.build().await.unwrap());
    let load = harness::start(&client, prefix, MAX_OPS);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = Instant::now();
    fault().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    harness::finish(
        name,
        load,
        &checker(server).await,
        prefix,
        Some(DEADLINE),
        at,
        None,
    )
    .await
}

/// Arms a proxy fault three times, 150 ms apart.
async fn three_times(arm: impl Fn()) {
    for _ in 0..3 {
        arm();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub async fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    // Killed and restarted.
    {
        let (mut server, proxy) = durable_behind_proxy(&[]).await;
        let client = Client::Standalone(client(proxy.port()).build().await.unwrap());
        let load = harness::start(&client, "kill", MAX_OPS);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = Instant::now();
        server.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.restart().await.unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let checker = checker(&server).await;
        rows.push(
            harness::finish(
                "kill -9, restart (AOF always)",
                load,
                &checker,
                "kill",
                Some(DEADLINE),
                at,
                None,
            )
            .await,
        );
    }

    // Resets around the request.
    for (id, which) in [
        (("before", "reset before the write (SET)"), 0),
        (("after", "reset after the write (INCR)"), 1),
        (("mid", "reset mid-reply (GET)"), 2),
    ] {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let row = with_proxy(id, client(proxy.port()), &server, || async {
            three_times(|| match which {
                0 => proxy.cut_before_request("SET"),
                1 => proxy.cut_after_request("INCR"),
                _ => proxy.cut_mid_reply("GET"),
            })
            .await
        })
        .await;
        rows.push(row);
    }

    // Black hole longer than the response timeout.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let row = with_proxy(
            ("hole", "black hole 600 ms (response timeout 300 ms)"),
            client(proxy.port()),
            &server,
            || async {
                proxy.black_hole(true);
                tokio::time::sleep(Duration::from_millis(600)).await;
                proxy.black_hole(false);
            },
        )
        .await;
        rows.push(row);
    }

    // Black hole with no response timeout: only the deadline bounds calls.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let builder = client(proxy.port()).response_timeout(None);
        let row = with_proxy(
            (
                "deadline",
                "black hole 1 s, no response timeout, deadline 2 s",
            ),
            builder,
            &server,
            || async {
                proxy.black_hole(true);
                tokio::time::sleep(Duration::from_secs(1)).await;
                proxy.black_hole(false);
                // Calls caught in the hole end at their deadline, 2 s in.
                tokio::time::sleep(Duration::from_millis(1500)).await;
            },
        )
        .await;
        rows.push(row);
    }

    // Latency spikes of twice the response timeout.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let row = with_proxy(
            ("latency", "latency 600 ms for 1 s"),
            client(proxy.port()),
            &server,
            || async {
                proxy.set_latency(RESPONSE_TIMEOUT * 2);
                tokio::time::sleep(Duration::from_secs(1)).await;
                proxy.set_latency(Duration::ZERO);
            },
        )
        .await;
        rows.push(row);
    }

    // LOADING after a restart with a dataset that loads slowly.
    {
        let (mut server, proxy) = durable_behind_proxy(&[
            ("key-load-delay", "50"),
            ("loading-process-events-interval-bytes", "1024"),
        ])
        .await;
        let mut admin = server.connect().await.unwrap();
        admin
            .request(
                &Cmd::new("DEBUG")
                    .arg("POPULATE")
                    .arg(20_000)
                    .arg("pop")
                    .arg(64),
            )
            .await
            .unwrap();
        admin.request(&Cmd::new("BGREWRITEAOF")).await.unwrap();
        wait_aof_rewrite(&mut admin).await;
        drop(admin);
        let client = Client::Standalone(client(proxy.port()).build().await.unwrap());
        let load = harness::start(&client, "loading", MAX_OPS);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = Instant::now();
        server.kill();
        server.restart().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let checker = checker(&server).await;
        let mut row = harness::finish(
            "LOADING after a restart (20,000 keys, slow load)",
            load,
            &checker,
            "loading",
            Some(DEADLINE),
            at,
            None,
        )
        .await;
        if !row.errors.keys().any(|k| k.starts_with("BusyLoading")) {
            row.note
                .push_str("(no caller saw LOADING: retried through) ");
        }
        rows.push(row);
    }

    // CLIENT PAUSE WRITE for 2 s.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let mut admin = server.connect().await.unwrap();
        let row = with_proxy(
            ("pause", "CLIENT PAUSE 2000 WRITE"),
            client(proxy.port()),
            &server,
            || async {
                admin
                    .request(&Cmd::new("CLIENT").arg("PAUSE").arg(2000).arg("WRITE"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(2000)).await;
            },
        )
        .await;
        rows.push(row);
    }

    // maxclients reached while the client reconnects.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let mut admin = server.connect().await.unwrap();
        let server_ref = &server;
        let row = with_proxy(
            ("maxclients", "maxclients reached during a reconnect"),
            client(proxy.port()),
            &server,
            || async {
                let info = admin
                    .request(&Cmd::new("INFO").arg("clients"))
                    .await
                    .unwrap();
                let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
                let connected: usize = info
                    .lines()
                    .find_map(|l| l.strip_prefix("connected_clients:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap();
                admin
                    .request(
                        &Cmd::new("CONFIG")
                            .arg("SET")
                            .arg("maxclients")
                            .arg(connected),
                    )
                    .await
                    .unwrap();
                // Cut the client's connection and take its place at once.
                proxy.reset_all();
                let filler = Connection::connect(&server_ref.connection_config()).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                drop(filler);
                admin
                    .request(&Cmd::new("CONFIG").arg("SET").arg("maxclients").arg(10_000))
                    .await
                    .unwrap();
            },
        )
        .await;
        rows.push(row);
    }

    // The password changed under a live client.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let mut admin = server.connect().await.unwrap();
        let proxy_ref = &proxy;
        let mut row = with_proxy(
            ("password", "password changed, then back"),
            client(proxy.port()),
            &server,
            || async {
                admin
                    .request(
                        &Cmd::new("CONFIG")
                            .arg("SET")
                            .arg("requirepass")
                            .arg("changed"),
                    )
                    .await
                    .unwrap();
                let before = proxy_ref.connections_accepted();
                proxy_ref.reset_all();
                tokio::time::sleep(Duration::from_secs(1)).await;
                let attempts = proxy_ref.connections_accepted() - before;
                admin
                    .request(&Cmd::new("CONFIG").arg("SET").arg("requirepass").arg(""))
                    .await
                    .unwrap();
                assert!(
                    attempts < 60,
                    "{attempts} connection attempts in 1 s: a tight loop"
                );
            },
        )
        .await;
        row.note
            .push_str("reconnects rate-limited by the backoff; ");
        rows.push(row);
    }

    // The server replaced by one that answers garbage.
    {
        let (server, proxy) = durable_behind_proxy(&[]).await;
        let garbage = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let garbage_port = garbage.local_addr().unwrap().port();
        let babbler = tokio::spawn(async move {
            loop {
                if let Ok((mut socket, _)) = garbage.accept().await {
                    tokio::spawn(async move {
                        let _ = socket.write_all(b"%%garbage\x00\xff\r\n").await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    });
                }
            }
        });
        let real = server.port();
        let row = with_proxy(
            ("garbage", "server replaced by one answering garbage"),
            client(proxy.port()),
            &server,
            || async {
                proxy.set_upstream(garbage_port);
                proxy.reset_all();
                tokio::time::sleep(Duration::from_millis(500)).await;
                proxy.set_upstream(real);
                proxy.reset_all();
            },
        )
        .await;
        babbler.abort();
        rows.push(row);
    }
    rows
}

async fn wait_aof_rewrite(admin: &mut Connection) {
    for _ in 0..200 {
        let info = admin
            .request(&Cmd::new("INFO").arg("persistence"))
            .await
            .unwrap();
        let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the AOF rewrite did not finish");
}
