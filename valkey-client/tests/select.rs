//! `Valkey::select(db)`: a new handle with connections of its own whose
//! handshake selects the database, so writes land in it, and still do after
//! its connection is killed and reopened; its dedicated connections
//! (blocking commands, watch) use it too. SELECT stays refused on the shared
//! connection.

use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{Cmd, Connection, ErrorKind, Transaction, Value};
use valkey_testkit::{Server, ServerConfig};

mod common;
use common::{local, patient_retry};

/// A direct connection to database `db`.
async fn direct(server: &Server, db: i64) -> Connection {
    Connection::connect(&server.connection_config().db(db))
        .await
        .unwrap()
}

async fn get(conn: &mut Connection, key: &str) -> Value {
    conn.request(&Cmd::new("GET").arg(key)).await.unwrap()
}

#[tokio::test]
async fn writes_through_select_land_in_that_database_across_reconnects() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = local(server.port())
        .retry(patient_retry())
        .response_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .unwrap();
    let db1 = client.select(1);
    let (mut in_db0, mut in_db1) = (direct(&server, 0).await, direct(&server, 1).await);

    db1.set("k", "one").await.unwrap();
    client.set("k", "zero").await.unwrap();
    assert_eq!(get(&mut in_db1, "k").await.as_str(), Some("one"));
    assert_eq!(get(&mut in_db0, "k").await.as_str(), Some("zero"));
    assert_eq!(db1.get::<String>("k").await.unwrap(), "one");

    // Kill db1's connection: it reconnects (the retry covers the first
    // request after the kill) and is still in database 1.
    let id: i64 = db1.request(&Cmd::new("CLIENT").arg("ID")).await.unwrap();
    let mut admin = server.connect().await.unwrap();
    admin
        .request(&Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id))
        .await
        .unwrap();
    db1.set("after", "kill").await.unwrap();
    let info: String = db1.request(&Cmd::new("CLIENT").arg("INFO")).await.unwrap();
    assert!(!info.contains(&format!("id={id} ")), "{info}");
    assert!(info.contains(" db=1 "), "{info}");
    assert_eq!(get(&mut in_db1, "after").await.as_str(), Some("kill"));
    assert!(get(&mut in_db0, "after").await.is_nil());

    // The original client is untouched, and still in database 0.
    let info: String = client
        .request(&Cmd::new("CLIENT").arg("INFO"))
        .await
        .unwrap();
    assert!(info.contains(" db=0 "), "{info}");

    // Dedicated connections select it too: a blocking pop, a watch, a
    // transaction.
    db1.request::<i64>(&Cmd::new("RPUSH").arg("list").arg("x"))
        .await
        .unwrap();
    let popped: Vec<String> = db1
        .request(&Cmd::new("BLPOP").arg("list").arg(1))
        .await
        .unwrap();
    assert_eq!(popped, vec!["list", "x"]);
    db1.watch(["k"], async |w| {
        let v: String = w.request(&Cmd::new("GET").arg("k")).await?;
        let mut tx = Transaction::new();
        tx.cmd("SET").arg("k").arg(format!("{v}+"));
        Ok(Some(tx))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(get(&mut in_db1, "k").await.as_str(), Some("one+"));
    assert_eq!(get(&mut in_db0, "k").await.as_str(), Some("zero"));

    // A select of a select: database 2; the same options.
    let db2 = db1.select(2);
    db2.set("k", "two").await.unwrap();
    assert_eq!(
        get(&mut direct(&server, 2).await, "k").await.as_str(),
        Some("two")
    );
    assert_eq!(
        db2.effective_retry().map(|r| r.retries()),
        client.effective_retry().map(|r| r.retries())
    );

    // SELECT itself stays refused on the shared connection.
    let err = client
        .request::<Value>(&Cmd::new("SELECT").arg(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StatefulCommand);
    assert!(err.message().contains("select(db)"), "{err}");
}

#[tokio::test]
async fn a_database_the_server_lacks_fails_its_requests() {
    let server = Server::start(ServerConfig::new().config("databases", "4"))
        .await
        .unwrap();
    let client = local(server.port()).build().await.unwrap();
    let err = client.select(9).ping().await.unwrap_err();
    assert!(err.message().contains("DB index is out of range"), "{err}");
    // The original is unaffected.
    client.ping().await.unwrap();
}
