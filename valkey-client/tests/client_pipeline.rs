//! `Valkey::pipeline` against real servers: one result per command, and on a
//! lost connection only the unanswered commands are sent again, and only
//! those that may be (never sent, or safe to repeat, or opted in).

mod common;

use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{CallOptions, Cmd, Delivery, ErrorKind, Pipeline, Valkey};
use valkey_testkit::{Server, ServerConfig};

use common::{patient_client, server_and_proxy, through};

async fn get_int(server: &Server, key: &str) -> i64 {
    let mut admin = server.connect().await.unwrap();
    let v = admin.request(&Cmd::new("GET").arg(key)).await.unwrap();
    v.as_str().map_or(0, |s| s.parse().unwrap())
}

#[tokio::test]
async fn one_result_per_command_in_order() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = Valkey::connect("127.0.0.1", server.port()).await.unwrap();
    let mut pipe = Pipeline::new();
    pipe.cmd("SET").arg("a").arg(1);
    pipe.cmd("INCR").arg("a");
    pipe.cmd("SET").arg("s").arg("text");
    pipe.cmd("INCR").arg("s");
    pipe.cmd("GET").arg("a");
    let results = client.pipeline(&mut pipe).await.unwrap();
    assert_eq!(results.len(), 5);
    assert!(results[0].as_ref().unwrap().is_ok());
    assert_eq!(results[1].as_ref().unwrap().as_int(), Some(2));
    let err = results[3].as_ref().unwrap_err();
    assert_eq!(err.delivery(), Delivery::Replied);
    assert_eq!(err.code(), Some("ERR"), "{err}");
    assert_eq!(results[4].as_ref().unwrap().as_str(), Some("2"));
    // A server error is one command's result: the client goes on.
    client.ping().await.unwrap();
    // Empty, and an argument before any command.
    assert!(
        client
            .pipeline(&mut Pipeline::new())
            .await
            .unwrap()
            .is_empty()
    );
    let mut bad = Pipeline::new();
    bad.arg("orphan");
    assert_eq!(
        client.pipeline(&mut bad).await.unwrap_err().kind(),
        ErrorKind::Data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_unanswered_rest_is_sent_again() {
    let (server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();
    client.ping().await.unwrap();
    // The SET runs, its reply is lost: INCR already has its answer and must
    // not run again; SET and GET are safe to repeat.
    proxy.cut_after_request("SET");
    let mut pipe = Pipeline::new();
    pipe.cmd("INCR").arg("x");
    pipe.cmd("SET").arg("y").arg(7);
    pipe.cmd("GET").arg("y");
    let results = client.pipeline(&mut pipe).await.unwrap();
    assert_eq!(proxy.faults_triggered(), 1);
    assert_eq!(results[0].as_ref().unwrap().as_int(), Some(1));
    assert!(results[1].as_ref().unwrap().is_ok());
    assert_eq!(results[2].as_ref().unwrap().as_str(), Some("7"));
    assert_eq!(get_int(&server, "x").await, 1, "INCR ran twice");
    assert_eq!(proxy.commands_seen("INCR"), 1);
    assert_eq!(proxy.commands_seen("SET"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_command_that_may_have_run_is_not_sent_again() {
    let (server, proxy) = server_and_proxy().await;
    let client = through(&proxy).build().await.unwrap();
    client.ping().await.unwrap();
    proxy.cut_after_request("INCR");
    let mut pipe = Pipeline::new();
    pipe.cmd("SET").arg("y").arg(1);
    pipe.cmd("INCR").arg("x");
    pipe.cmd("GET").arg("y");
    let results = client.pipeline(&mut pipe).await.unwrap();
    assert!(results[0].as_ref().unwrap().is_ok());
    for lost in &results[1..] {
        let err = lost.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert_eq!(err.delivery(), Delivery::SentNoReply);
    }
    assert_eq!(get_int(&server, "x").await, 1);
    assert_eq!(proxy.commands_seen("INCR"), 1);

    // Opted in: the rest is sent again, and the INCR runs twice.
    proxy.cut_after_request("INCR");
    let mut pipe = Pipeline::new();
    pipe.cmd("INCR").arg("x");
    pipe.cmd("GET").arg("x");
    let opted_in = CallOptions::new().retry_non_idempotent(true);
    let results = client.pipeline_with(&mut pipe, &opted_in).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().as_int(), Some(3));
    assert_eq!(results[1].as_ref().unwrap().as_str(), Some("3"));
    assert_eq!(proxy.commands_seen("INCR"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_never_sent_is_sent_again_whatever_it_holds() {
    let mut server = common::durable_server().await;
    let client = patient_client(&server).await;
    client.ping().await.unwrap();
    // The server is down when the pipeline starts: the attempts fail to
    // connect, so nothing was written, and the INCRs (not safe to repeat)
    // are sent once the server is back.
    server.kill();
    // Let the connection's task see the close, so the pipeline is not
    // written into the dead socket.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart().await.unwrap();
        server
    });
    let mut pipe = Pipeline::new();
    pipe.cmd("INCR").arg("x");
    pipe.cmd("INCR").arg("x");
    let results = client.pipeline(&mut pipe).await.unwrap();
    let server = restart.await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().as_int(), Some(1));
    assert_eq!(results[1].as_ref().unwrap().as_int(), Some(2));
    assert_eq!(get_int(&server, "x").await, 2);
}

#[tokio::test]
async fn without_retry_a_lost_connection_fails_each_unanswered_command() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let client = Valkey::connect("127.0.0.1", server.port()).await.unwrap();
    client.ping().await.unwrap();
    server.kill();
    let mut pipe = Pipeline::new();
    pipe.cmd("SET").arg("a").arg(1);
    pipe.cmd("GET").arg("a");
    let results = client.pipeline(&mut pipe).await.unwrap();
    assert_eq!(results.len(), 2);
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Connection);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_survive_a_kill_and_restart() {
    let mut server = common::durable_server().await;
    let client = patient_client(&server).await;
    let worker = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..300u32 {
                let key = format!("k{}", i % 10);
                let mut pipe = Pipeline::new();
                pipe.cmd("SET").arg(&key).arg(i);
                pipe.cmd("GET").arg(&key);
                let results = client.pipeline(&mut pipe).await.unwrap();
                let got = results[1]
                    .as_ref()
                    .unwrap_or_else(|e| panic!("pipeline {i}: {e}"));
                assert_eq!(got.as_str(), Some(i.to_string().as_str()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    common::bounce_under_load(&mut server).await;
    worker.await.unwrap();
}

#[tokio::test]
async fn the_deadline_bounds_a_pipeline_and_its_retries() {
    let (_server, proxy) = server_and_proxy().await;
    let client = through(&proxy)
        .request_timeout(Some(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    client.ping().await.unwrap();
    proxy.black_hole(true);
    let mut pipe = Pipeline::new();
    pipe.cmd("GET").arg("a");
    pipe.cmd("GET").arg("b");
    let started = std::time::Instant::now();
    let results = client.pipeline(&mut pipe).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Timeout);
    }
}
