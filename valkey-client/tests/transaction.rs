//! Transactions against real servers: `Transaction` (MULTI ... EXEC in one
//! write on the shared connection), its results and errors, its retries
//! (whole, and only when safe), and `watch` on a dedicated connection:
//! re-run after a concurrent write to a watched key, bounded, never re-run
//! once EXEC may have run, and connections given back clean. In a cluster:
//! one slot, routed to its owner.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use valkey_client::Commands;
use valkey_client::{
    Cmd, Connection, Delivery, ErrorKind, Transaction, Valkey, ValkeyCluster, Value, WatchOptions,
};
use valkey_testkit::{Cluster, ClusterConfig, Server, ServerConfig};

mod common;
use common::{local, server_and_proxy, through};

/// `n` from a GET of a counter (nil is 0), through the typed methods of
/// the watched connection.
async fn read_counter(w: &mut valkey_client::Watched<'_>, key: &str) -> valkey_client::Result<i64> {
    let n: Option<i64> = w.get(key).await?;
    Ok(n.unwrap_or(0))
}

/// A transaction that sets `key` to `value` (a typed method queues it).
fn set_tx(key: &str, value: i64) -> Transaction {
    let mut tx = Transaction::new();
    tx.set(key, value);
    tx
}

/// How many runs a watch of `key` that sets it takes.
async fn runs_to_set(client: &Valkey, key: &str) -> u32 {
    let runs = AtomicU32::new(0);
    client
        .watch([key], async |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(Some(set_tx(key, 1)))
        })
        .await
        .unwrap()
        .unwrap();
    runs.into_inner()
}

#[tokio::test]
async fn a_transaction_runs_whole_with_per_command_results() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port()).build().await.unwrap();

    let mut tx = Transaction::new();
    tx.cmd("SET").arg("a").arg(1);
    tx.cmd("INCR").arg("a");
    tx.cmd("LPUSH").arg("a").arg("x"); // WRONGTYPE, inside EXEC
    tx.cmd("GET").arg("a");
    assert_eq!(tx.len(), 4);
    let results = client.transaction(&mut tx).await.unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap().as_str(), Some("OK"));
    assert_eq!(results[1].as_ref().unwrap().as_int(), Some(2));
    let wrongtype = results[2].as_ref().unwrap_err();
    assert_eq!(wrongtype.code(), Some("WRONGTYPE"));
    assert_eq!(results[3].as_ref().unwrap().as_str(), Some("2"));

    // The transaction keeps its commands; converted as a whole, the failed
    // command fails the call and says the transaction ran.
    let err = client.exec_into::<Vec<Value>>(&mut tx).await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    assert!(err.message().contains("command 3 (LPUSH)"), "{err}");
    assert!(err.message().contains("the transaction ran"), "{err}");
    assert_eq!(client.get::<i64>("a").await.unwrap(), 2);

    let mut counters = Transaction::new();
    counters
        .cmd("INCR")
        .arg("hits")
        .cmd("INCRBY")
        .arg("hits")
        .arg(10);
    let counts: Vec<i64> = client.exec_into(&mut counters).await.unwrap();
    assert_eq!(counts, vec![1, 11]);

    // A command refused while queued aborts it all: nothing runs.
    let mut bad = Transaction::new();
    bad.cmd("SET").arg("b").arg(1);
    bad.cmd("GET"); // wrong number of arguments
    let err = client.transaction(&mut bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ExecAbort);
    assert!(err.message().contains("command 2 (GET)"), "{err}");
    assert!(err.message().contains("wrong number of arguments"), "{err}");
    assert_eq!(client.get::<Option<i64>>("b").await.unwrap(), None);

    // The shared connection is not left in a transaction.
    client.set("c", 3).await.unwrap();
    assert_eq!(client.get::<i64>("c").await.unwrap(), 3);
    let empty = client.transaction(&mut Transaction::new()).await.unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn a_transaction_whose_exec_may_have_run_is_not_sent_again() {
    let (_server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();

    // The server runs the transaction, the reply is lost: an INCR inside
    // makes it unsafe to repeat, so it fails, saying it may have run.
    proxy.cut_after_request("EXEC");
    let mut tx = Transaction::new();
    tx.cmd("INCR").arg("counter");
    let err = client.transaction(&mut tx).await.unwrap_err();
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    assert!(err.message().contains("may have run"), "{err}");
    assert_eq!(proxy.commands_seen("EXEC"), 1);
    assert_eq!(client.get::<i64>("counter").await.unwrap(), 1);

    // Every command safe to repeat: the whole transaction is sent again.
    proxy.cut_after_request("EXEC");
    let mut safe = Transaction::new();
    safe.cmd("SET").arg("k").arg("v");
    safe.cmd("GET").arg("k");
    let results = client.transaction(&mut safe).await.unwrap();
    assert_eq!(results[1].as_ref().unwrap().as_str(), Some("v"));
    assert_eq!(proxy.commands_seen("EXEC"), 3);
}

#[tokio::test]
async fn watch_reruns_after_a_concurrent_write_and_ends_with_the_right_value() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port()).build().await.unwrap();
    let other = local(server.port()).build().await.unwrap();

    // The first run reads 0, then another client increments the counter:
    // EXEC aborts, the closure runs again on the new value.
    let runs = AtomicU32::new(0);
    let results = client
        .watch(["counter"], async |w| {
            let n = read_counter(w, "counter").await?;
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                other.incr("counter").await?;
            }
            Ok(Some(set_tx("counter", n + 10)))
        })
        .await
        .unwrap()
        .expect("a transaction ran");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(results[0].as_ref().unwrap().as_str(), Some("OK"));
    assert_eq!(client.get::<i64>("counter").await.unwrap(), 11);

    // Tasks racing on one key: every increment lands exactly once.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    client
                        .watch_with(
                            &WatchOptions::new().max_attempts(1000),
                            ["race"],
                            async |w| {
                                let n = read_counter(w, "race").await?;
                                Ok(Some(set_tx("race", n + 1)))
                            },
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(client.get::<i64>("race").await.unwrap(), 100);
}

#[tokio::test]
async fn watch_gives_up_after_its_attempts_and_leaves_connections_clean() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port()).build().await.unwrap();
    let other = local(server.port()).build().await.unwrap();

    // A key changed before every EXEC: a Watch error after 3 runs.
    let runs = AtomicU32::new(0);
    let err = client
        .watch_with(&WatchOptions::new().max_attempts(3), ["hot"], async |w| {
            runs.fetch_add(1, Ordering::SeqCst);
            let n = read_counter(w, "hot").await?;
            other.incr("hot").await?;
            Ok(Some(set_tx("hot", n + 100)))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Watch);
    assert!(err.message().contains("3 attempts"), "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(client.get::<i64>("hot").await.unwrap(), 3);

    // A closure that runs nothing: its watch is undone (UNWATCH) before the
    // connection goes back, so a later change to that key does not abort
    // the next watch on the same connection.
    let none = client.watch(["left"], async |_| Ok(None)).await.unwrap();
    assert!(none.is_none());
    other.set("left", 1).await.unwrap();
    assert_eq!(runs_to_set(&client, "right").await, 1);

    // The closure's error comes back as it is, and the connection is clean.
    let err = client
        .watch(["left"], async |_| {
            Err(valkey_client::Error::new(
                ErrorKind::Data,
                "changed my mind",
            ))
        })
        .await
        .unwrap_err();
    assert_eq!(err.message(), "changed my mind");
    other.set("left", 2).await.unwrap();
    assert_eq!(runs_to_set(&client, "right").await, 1);

    // State commands are refused on the watched connection; reads of other
    // keys and blocking commands with a timeout are fine.
    client
        .watch(["k"], async |w| {
            for refused in [Cmd::new("MULTI"), Cmd::new("SELECT").arg(1)] {
                let err = w.request::<Value>(&refused).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::StatefulCommand);
            }
            let popped: Option<Value> = w
                .request(&Cmd::new("BLPOP").arg("empty").arg("0.05"))
                .await?;
            assert!(popped.is_none());
            Ok(None)
        })
        .await
        .unwrap();
    // Nor inside the transaction: SELECT would outlive it.
    let err = client
        .watch(["k"], async |_| {
            let mut tx = Transaction::new();
            tx.cmd("SELECT").arg(1);
            Ok(Some(tx))
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StatefulCommand);
    assert!(
        client
            .watch(Vec::<&str>::new(), async |_| Ok(None))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_watched_transaction_whose_connection_drops_after_exec_is_not_rerun() {
    let (_server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();
    proxy.cut_after_request("EXEC");
    let runs = Arc::new(AtomicU32::new(0));
    let err = client
        .watch(["counter"], async |w| {
            runs.fetch_add(1, Ordering::SeqCst);
            let n = read_counter(w, "counter").await?;
            let mut tx = Transaction::new();
            tx.cmd("INCRBY").arg("counter").arg(n + 1);
            Ok(Some(tx))
        })
        .await
        .unwrap_err();
    assert_eq!(err.delivery(), Delivery::SentNoReply);
    assert!(err.message().contains("may have run"), "{err}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.commands_seen("EXEC"), 1);
    assert_eq!(client.get::<i64>("counter").await.unwrap(), 1);

    // The broken connection was not given back: the next watch works.
    let results = client
        .watch(["counter"], async |w| {
            let n = read_counter(w, "counter").await?;
            Ok(Some(set_tx("counter", n + 1)))
        })
        .await
        .unwrap()
        .unwrap();
    assert!(results[0].is_ok());
    assert_eq!(client.get::<i64>("counter").await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_transactions_and_watch_run_on_the_slot_owner() {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let (host, port) = cluster.seed_addrs()[0].clone();
    let rc = ValkeyCluster::connect(&host, port).await.unwrap();

    let mut tx = Transaction::new();
    tx.cmd("SET").arg("{user1}:a").arg(5);
    tx.cmd("INCR").arg("{user1}:a");
    let counts: Vec<Value> = rc.exec_into(&mut tx).await.unwrap();
    assert_eq!(counts[1].as_int(), Some(6));
    // It ran on the owner of the slot.
    let owner = rc
        .slot_owner(valkey_client::cluster::key_slot(b"{user1}:a"))
        .unwrap();
    let owner_port: u16 = owner.rsplit(':').next().unwrap().parse().unwrap();
    let mut direct = Connection::connect(&valkey_client::ConnectionConfig::tcp(
        "127.0.0.1",
        owner_port,
    ))
    .await
    .unwrap();
    let v = direct
        .request(&Cmd::new("GET").arg("{user1}:a"))
        .await
        .unwrap();
    assert_eq!(v.as_str(), Some("6"));

    let mut cross = Transaction::new();
    cross.cmd("SET").arg("a").arg(1).cmd("SET").arg("b").arg(1);
    let err = rc.transaction(&mut cross).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);

    // watch: aborted by a concurrent write, run again on the slot owner.
    let other = ValkeyCluster::connect(&host, port).await.unwrap();
    let runs = AtomicU32::new(0);
    rc.watch(["{user1}:a", "{user1}:b"], async |w| {
        let n = read_counter(w, "{user1}:a").await?;
        if runs.fetch_add(1, Ordering::SeqCst) == 0 {
            other.incr("{user1}:a").await?;
        }
        let mut tx = set_tx("{user1}:a", n * 2);
        tx.cmd("SET").arg("{user1}:b").arg(n);
        Ok(Some(tx))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(rc.get::<i64>("{user1}:a").await.unwrap(), 14);
    assert_eq!(rc.get::<i64>("{user1}:b").await.unwrap(), 7);

    // Keys of several slots are refused, before anything is sent.
    let err = rc.watch(["a", "b"], async |_| Ok(None)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);
    let err = rc
        .watch(["{user1}:a"], async |w| {
            let _: Option<String> = w.request(&Cmd::new("GET").arg("elsewhere")).await?;
            Ok(None)
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);
    let err = rc
        .watch(["{user1}:a"], async |_| Ok(Some(set_tx("elsewhere", 1))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);
    assert_eq!(rc.get::<Option<i64>>("elsewhere").await.unwrap(), None);
}

#[tokio::test]
async fn a_standalone_transaction_needs_no_common_slot() {
    // Only a cluster restricts keys to one slot.
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client: Valkey = local(server.port()).build().await.unwrap();
    let mut tx = Transaction::new();
    tx.cmd("SET").arg("a").arg(1).cmd("SET").arg("b").arg(2);
    let results = client.transaction(&mut tx).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()));
}
