//! The multiplexed connection against a real valkey-server: many tasks on one
//! socket, replies matched in order, timeouts that do not disturb others.

use std::time::{Duration, Instant};

use valkey_client::{
    Cmd, Connection, Delivery, ErrorKind, MultiplexOptions, Multiplexed, PushHandler,
};
use valkey_testkit::{Server, ServerConfig};

async fn mux(server: &Server, options: MultiplexOptions) -> Multiplexed {
    let conn = Connection::connect(&server.connection_config())
        .await
        .unwrap();
    Multiplexed::new(conn, options).unwrap()
}

/// A request that timed out after it was written.
fn assert_unanswered_timeout(err: &valkey_client::Error) {
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.delivery(), Delivery::SentNoReply, "{err}");
}

/// A connection declared dead after 200 ms of silence with requests out.
async fn watched_mux(server: &Server) -> Multiplexed {
    let mut options = MultiplexOptions::default();
    options.response_timeout = Some(Duration::from_millis(200));
    mux(server, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_each_get_their_own_replies() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    let mut tasks = Vec::new();
    for t in 0..64 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                let key = format!("task{t}:{}", i % 7);
                let value = format!("{t}-{i}");
                let set = Cmd::new("SET").arg(&key).arg(&value);
                assert!(conn.send(&set, None).await.unwrap().is_ok());
                let got = conn.send(&Cmd::new("GET").arg(&key), None).await.unwrap();
                assert_eq!(
                    got.as_str(),
                    Some(value.as_str()),
                    "task {t} got another's reply"
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // All of it went through the one socket: ours, plus the one `info` opens.
    let clients = server.info("clients").await.unwrap();
    assert!(clients.contains("connected_clients:2\r\n"), "{clients}");
}

#[tokio::test]
async fn a_timed_out_request_does_not_shift_the_replies_of_others() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    conn.send(&Cmd::new("SET").arg("k").arg("v"), None)
        .await
        .unwrap();
    let sleep = Cmd::new("DEBUG").arg("SLEEP").arg("0.3");
    let slow = conn.send(&sleep, Some(Duration::from_millis(50)));
    let err = slow.await.unwrap_err();
    assert_unanswered_timeout(&err);
    // The DEBUG reply (+OK) arrives later and must be discarded, not handed
    // to this GET.
    let got = conn.send(&Cmd::new("GET").arg("k"), None).await.unwrap();
    assert_eq!(got.as_str(), Some("v"));
    assert!(conn.is_alive());
}

#[tokio::test]
async fn a_silent_connection_is_declared_dead() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = watched_mux(&server).await;
    let blocker = conn.clone();
    let sleeping = tokio::spawn(async move {
        blocker
            .send(&Cmd::new("DEBUG").arg("SLEEP").arg("1"), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let err = conn
        .send(&Cmd::new("GET").arg("k"), None)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_unanswered_timeout(&err);
    let err = sleeping.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(!conn.is_alive());
    let err = conn.send(&Cmd::new("PING"), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection);
    assert_eq!(err.delivery(), Delivery::NotSent);
}

#[tokio::test]
async fn server_errors_are_per_request_and_loading_drains_the_connection() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    let err = conn
        .send(&Cmd::new("INCR").arg("a").arg("b"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response);
    assert!(
        conn.is_alive(),
        "an ordinary error leaves the connection up"
    );
    let loading = Cmd::new("EVAL")
        .arg("return redis.error_reply('LOADING pretend')")
        .arg(0);
    let err = conn.send(&loading, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BusyLoading);
    assert!(
        !conn.is_alive(),
        "connection-family replies retire the connection"
    );
}

#[tokio::test]
async fn killed_server_fails_outstanding_requests_as_sent() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    let blocked = conn.clone();
    let waiting = tokio::spawn(async move {
        blocked
            .send(&Cmd::new("BLPOP").arg("nothing").arg(0), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill();
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(err.delivery(), Delivery::SentNoReply);
}

/// Between requests the driver task keeps watching the socket: a server
/// that closes the idle connection is noticed at once, so the next request
/// fails unsent (safe to retry) instead of being written into a dead socket.
#[tokio::test]
async fn an_idle_connection_closed_by_the_server_is_noticed_without_a_request() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    for _ in 0..3 {
        conn.send(&Cmd::new("PING"), None).await.unwrap();
    }
    let id = conn
        .send(&Cmd::new("CLIENT").arg("ID"), None)
        .await
        .unwrap()
        .as_int()
        .unwrap();
    let mut admin = server.connect().await.unwrap();
    admin
        .request(&Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id))
        .await
        .unwrap();
    let started = Instant::now();
    while conn.is_alive() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!conn.is_alive(), "the close went unnoticed");
    let err = conn
        .send(&Cmd::new("INCR").arg("counter"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert_eq!(err.delivery(), Delivery::NotSent);
}

/// Callers that come and go, so the connection keeps switching between one
/// caller driving the socket itself and the task driving it for many:
/// every reply still reaches its own caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_and_crowded_phases_keep_every_reply_with_its_caller() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    let mut tasks = Vec::new();
    for t in 0..6u64 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..300u64 {
                // Uneven pauses: sometimes alone, sometimes in a crowd.
                if (i * 7 + t * 3) % 5 == 0 {
                    tokio::time::sleep(Duration::from_micros(200 * (t + 1))).await;
                }
                let value = format!("{t}-{i}");
                let echo = conn
                    .send(&Cmd::new("ECHO").arg(&value), None)
                    .await
                    .unwrap();
                assert_eq!(
                    echo.as_str(),
                    Some(value.as_str()),
                    "task {t} got another's reply"
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Alone again at the end: the lone path still works.
    let last = conn
        .send(&Cmd::new("ECHO").arg("last"), None)
        .await
        .unwrap();
    assert_eq!(last.as_str(), Some("last"));
}

#[tokio::test]
async fn a_pipeline_shares_the_connection_and_gets_its_replies_in_order() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut options = MultiplexOptions::default();
    options.max_in_flight = 4;
    let conn = mux(&server, options).await;
    let mut pipe = valkey_client::Pipeline::new();
    pipe.cmd("SET").arg("p").arg(1);
    pipe.cmd("INCRBY").arg("p").arg(5);
    pipe.cmd("GET").arg("p");
    let echo = Cmd::new("ECHO").arg("alone");
    let (single, results) =
        tokio::join!(conn.send(&echo, None), conn.send_pipeline(&mut pipe, None));
    assert_eq!(single.unwrap().as_str(), Some("alone"));
    let results = results.unwrap();
    assert_eq!(results[1].as_ref().unwrap().as_int(), Some(6));
    assert_eq!(results[2].as_ref().unwrap().as_str(), Some("6"));
    // More commands than may ever be in flight: refused whole, nothing sent.
    for _ in 0..2 {
        pipe.cmd("INCR").arg("p");
    }
    let err = conn.send_pipeline(&mut pipe, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let got = conn.send(&Cmd::new("GET").arg("p"), None).await.unwrap();
    assert_eq!(got.as_str(), Some("6"));
}

#[tokio::test]
async fn a_timed_out_pipeline_fails_its_commands_and_drops_their_late_replies() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    let mut pipe = valkey_client::Pipeline::new();
    pipe.cmd("SET").arg("t").arg("before");
    pipe.cmd("DEBUG").arg("SLEEP").arg("0.3");
    pipe.cmd("SET").arg("t").arg("after");
    let results = conn
        .send_pipeline(&mut pipe, Some(Duration::from_millis(100)))
        .await
        .unwrap();
    // The server writes the SET's reply only after the sleep, with the rest.
    for late in &results {
        let err = late.as_ref().unwrap_err();
        assert_unanswered_timeout(err);
    }
    // The late replies are discarded, not handed to the next request.
    let got = conn.send(&Cmd::new("GET").arg("t"), None).await.unwrap();
    assert_eq!(got.as_str(), Some("after"));
    assert!(conn.is_alive());
}

/// The watchdog also runs for a caller that drives the socket itself: alone
/// on a silent connection, it is told the connection is dead after the
/// response timeout, not when the server wakes up.
#[tokio::test]
async fn a_lone_caller_on_a_silent_connection_is_told_it_is_dead() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = watched_mux(&server).await;
    conn.send(&Cmd::new("PING"), None).await.unwrap();
    let started = Instant::now();
    let err = conn
        .send(&Cmd::new("DEBUG").arg("SLEEP").arg("1"), None)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_unanswered_timeout(&err);
    assert!(!conn.is_alive());
}

/// The lower-level shared connection refuses connection-state commands
/// itself, alone and in a pipeline, before anything is written: a
/// `SUBSCRIBE` would otherwise hand later callers the wrong replies. An
/// exact `MULTI ... EXEC` pipeline is atomic on the wire and allowed.
#[tokio::test]
async fn connection_state_commands_are_refused_before_sending() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let conn = mux(&server, MultiplexOptions::default()).await;
    for cmd in [
        Cmd::new("SUBSCRIBE").arg("news"),
        Cmd::new("multi"),
        Cmd::new("SELECT").arg(1),
        Cmd::new("CLIENT").arg("REPLY").arg("OFF"),
    ] {
        let err = conn.send(&cmd, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StatefulCommand, "{err}");
        assert_eq!(err.delivery(), Delivery::NotSent, "{err}");
        let mut pipe = valkey_client::Pipeline::new();
        pipe.cmd("SET").arg("k").arg("v");
        pipe.add(&cmd);
        let err = conn.send_pipeline(&mut pipe, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StatefulCommand, "{err}");
    }
    // Nothing of the refused pipelines ran, and the connection is intact.
    let got = conn.send(&Cmd::new("GET").arg("k"), None).await.unwrap();
    assert_eq!(got, valkey_client::Value::Nil);
    let mut tx = valkey_client::Pipeline::new();
    tx.cmd("MULTI");
    tx.cmd("SET").arg("k").arg("v");
    tx.cmd("EXEC");
    let replies = conn.send_pipeline(&mut tx, None).await.unwrap();
    assert!(replies.iter().all(Result::is_ok), "{replies:?}");
    let got = conn.send(&Cmd::new("GET").arg("k"), None).await.unwrap();
    assert_eq!(got.as_str(), Some("v"));
}

/// Out-of-band pushes go to the handler of the options: here the
/// invalidation of a key read under `CLIENT TRACKING`.
#[tokio::test]
async fn pushes_reach_the_push_handler() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = Connection::connect(&server.connection_config())
        .await
        .unwrap();
    // Set up before sharing: the shared connection refuses state commands.
    conn.request(&Cmd::new("CLIENT").arg("TRACKING").arg("ON"))
        .await
        .unwrap();
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    let mut options = MultiplexOptions::default();
    options.pushes = Some(PushHandler::new(move |push| {
        let _ = tx.try_send(push);
    }));
    let shared = Multiplexed::new(conn, options).unwrap();
    shared
        .send(&Cmd::new("GET").arg("tracked"), None)
        .await
        .unwrap();
    assert!(rx.try_recv().is_err(), "no push before the key changes");
    let mut other = Connection::connect(&server.connection_config())
        .await
        .unwrap();
    other
        .request(&Cmd::new("SET").arg("tracked").arg("new"))
        .await
        .unwrap();
    // The invalidation was queued for our socket before the SET returned,
    // so it arrives ahead of this reply.
    let pong = shared.send(&Cmd::new("PING"), None).await.unwrap();
    assert_eq!(pong.as_str(), Some("PONG"));
    let push = rx.try_recv().expect("the invalidation push");
    let text = format!("{push:?}");
    assert!(
        text.contains("invalidate") && text.contains("tracked"),
        "{text}"
    );
}
