//! The password never shows in `Debug` (nor in an error's `Display`):
//! `ValkeyBuilder`, `ConnectionConfig` (set by hand or from a URL), a
//! `Valkey` and a `Connection` after an authenticated handshake with a
//! `requirepass` server, a `Pipeline` and a `Cmd` carrying it as arguments,
//! the client's events, and every error we can provoke around it: a wrong
//! password at connect (alone and under a Retry), `WRONGPASS` answering an
//! `AUTH`, an `AUTH` refused on the shared connection, a malformed URL.

mod common;

use std::sync::{Arc, Mutex};

use valkey_client::Commands;
use valkey_client::{Cmd, Connection, ConnectionConfig, NoBackoff, Pipeline, Retry, Value};
use valkey_testkit::{Server, ServerConfig};

use common::local;

/// Distinctive, so that a match is a leak and not a coincidence.
const PASSWORD: &str = "s3cr3t-Pa55";
const WRONG: &str = "wr0ng-Pa55";

fn assert_hidden(what: &str, text: &str) {
    for secret in [PASSWORD, WRONG] {
        assert!(!text.contains(secret), "{what} shows a password: {text}");
    }
}

/// Both renderings of an error.
fn assert_error_hidden(what: &str, err: &valkey_client::Error) {
    assert_hidden(what, &format!("{err:?}"));
    assert_hidden(what, &format!("{err}"));
}

async fn server() -> Server {
    Server::start(ServerConfig::new().password(PASSWORD))
        .await
        .expect("start a server with requirepass")
}

#[tokio::test]
async fn configs_clients_connections_commands_and_pipelines_hide_the_password() {
    let server = server().await;
    let port = server.port();
    let url = format!("valkey://default:{PASSWORD}@127.0.0.1:{port}");

    let builder = local(port).password(PASSWORD);
    assert_hidden("ValkeyBuilder", &format!("{builder:?}"));
    let from_url = local(port).url(&url).unwrap();
    assert_hidden("ValkeyBuilder from a URL", &format!("{from_url:?}"));

    let config = ConnectionConfig::tcp("127.0.0.1", port).password(PASSWORD);
    assert_hidden("ConnectionConfig", &format!("{config:?}"));
    let parsed = ConnectionConfig::from_url(&url).unwrap();
    assert_hidden("ConnectionConfig from a URL", &format!("{parsed:?}"));

    // After an authenticated handshake: the password was used, not kept in
    // view.
    let mut conn = Connection::connect(&config).await.unwrap();
    conn.request(&Cmd::new("PING")).await.unwrap();
    assert_hidden("Connection", &format!("{conn:?}"));
    let client = builder.build().await.unwrap();
    client.ping().await.unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains("Valkey"), "{shown}");
    assert_hidden("Valkey", &shown);
    let client = from_url.build().await.unwrap();
    client.ping().await.unwrap();
    assert_hidden("Valkey from a URL", &format!("{client:?}"));

    // The password as an argument, in a command and a pipeline.
    let auth = Cmd::new("AUTH").arg(PASSWORD);
    let shown = format!("{auth:?}");
    assert!(shown.contains("AUTH"), "{shown}");
    assert_hidden("Cmd", &shown);
    let mut pipe = Pipeline::new();
    pipe.cmd("AUTH").arg("default").arg(PASSWORD);
    pipe.cmd("SET").arg("k").arg(PASSWORD);
    pipe.add(&Cmd::new("SET").arg("k2").arg(PASSWORD));
    let shown = format!("{pipe:?}");
    assert!(shown.contains("SET"), "{shown}");
    assert_hidden("Pipeline", &shown);

    // A value stored under the password reads back: it was really sent.
    conn.request(&Cmd::new("SET").arg("k").arg(PASSWORD))
        .await
        .unwrap();
    let got: Option<String> = client.get("k").await.unwrap();
    assert_eq!(got.as_deref(), Some(PASSWORD));
}

#[tokio::test]
async fn errors_around_the_password_hide_it() {
    let server = server().await;
    let port = server.port();

    // A wrong password at connect: a dedicated connection, a client, and a
    // client that retries it (with the events it reports).
    let wrong = ConnectionConfig::tcp("127.0.0.1", port).password(WRONG);
    let err = Connection::connect(&wrong).await.unwrap_err();
    assert_error_hidden("Connection::connect with a wrong password", &err);
    let err = local(port).password(WRONG).build().await.unwrap_err();
    assert_error_hidden("build with a wrong password", &err);
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let err = local(port)
        .password(WRONG)
        .retry(Retry::new(NoBackoff, 2))
        .on_event(move |event| log.lock().unwrap().push(format!("{event:?}")))
        .build()
        .await
        .unwrap_err();
    assert_error_hidden("build with a wrong password under a Retry", &err);
    let events = events.lock().unwrap().clone();
    assert!(!events.is_empty(), "no events reported");
    for event in &events {
        assert_hidden("an event", event);
    }

    // WRONGPASS answering an AUTH on an authenticated dedicated connection.
    let mut conn = Connection::connect(&server.connection_config())
        .await
        .unwrap();
    let err = conn
        .request(&Cmd::new("AUTH").arg("default").arg(WRONG))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("WRONGPASS"), "{err}");
    assert_error_hidden("WRONGPASS", &err);
    let err = conn
        .request(
            &Cmd::new("HELLO")
                .arg(3)
                .arg("AUTH")
                .arg("default")
                .arg(WRONG),
        )
        .await
        .unwrap_err();
    assert_error_hidden("HELLO ... AUTH with a wrong password", &err);

    // AUTH refused on the shared connection, alone and in a pipeline.
    let client = local(port).password(PASSWORD).build().await.unwrap();
    let auth = Cmd::new("AUTH").arg("default").arg(PASSWORD);
    let err = client.request::<Value>(&auth).await.unwrap_err();
    assert_error_hidden("AUTH refused", &err);
    let mut pipe = Pipeline::new();
    pipe.add(&auth);
    pipe.cmd("SET").arg("k").arg(PASSWORD);
    let err = client.pipeline(&mut pipe).await.unwrap_err();
    assert_error_hidden("a pipeline with AUTH refused", &err);

    // Malformed URLs that carry the password.
    for url in [
        format!("valkey://default:{PASSWORD}@127.0.0.1:notaport"),
        format!("valkey://default:{PASSWORD}@127.0.0.1:{port}/notadb"),
        format!("valkey://default:{PASSWORD}@127.0.0.1:{port}?protocol=9"),
        format!("valkey://default:{PASSWORD}@127.0.0.1:{port}?password={PASSWORD}"),
        format!("unix:///tmp/s.sock?password={PASSWORD}&db=x"),
        format!("nope://default:{PASSWORD}@127.0.0.1"),
    ] {
        let err = ConnectionConfig::from_url(&url).unwrap_err();
        assert_error_hidden(&format!("the URL error of {url}"), &err);
        let err = local(port).url(&url).unwrap_err();
        assert_error_hidden(&format!("the builder's URL error of {url}"), &err);
    }
}
