//! The connection against real valkey-server 9.1.2 processes: TCP and Unix
//! sockets, RESP2 and RESP3, ACL users, wrong passwords, SELECT.

use valkey_client::{Cmd, Connection, ConnectionConfig, ErrorKind, Protocol, Value};
use valkey_testkit::{Server, ServerConfig};

async fn ping_set_get(config: &ConnectionConfig, key: &str) -> Connection {
    let mut conn = Connection::connect(config).await.expect("connect");
    let pong = conn.request(&Cmd::new("PING")).await.unwrap();
    assert_eq!(pong.as_str(), Some("PONG"));
    let ok = conn
        .request(&Cmd::new("SET").arg(key).arg(b"v\r\n\x00\xff"))
        .await
        .unwrap();
    assert!(ok.is_ok(), "{ok:?}");
    let got = conn.request(&Cmd::new("GET").arg(key)).await.unwrap();
    assert_eq!(got, Value::BulkString((&b"v\r\n\x00\xff"[..]).into()));
    conn
}

#[tokio::test]
async fn tcp_resp3_and_resp2() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let base = ConnectionConfig::tcp("127.0.0.1", server.port());

    let mut conn = ping_set_get(&base.clone().protocol(Protocol::Resp3), "k3").await;
    assert_eq!(conn.protocol(), Protocol::Resp3);
    assert_eq!(conn.server_version(), Some("9.1.2"));
    // RESP3 gives typed replies: a map for HGETALL.
    conn.request(&Cmd::new("HSET").args(["h", "f", "v"]))
        .await
        .unwrap();
    let map = conn.request(&Cmd::new("HGETALL").arg("h")).await.unwrap();
    assert!(
        matches!(map, Value::Map(ref pairs) if pairs.len() == 1),
        "{map:?}"
    );
    let info = conn.request(&Cmd::new("CLIENT").arg("INFO")).await.unwrap();
    let info = info.as_str().unwrap();
    assert!(info.contains("resp=3"), "{info}");
    assert!(info.contains("lib-name=valkey-client-rs"), "{info}");

    let mut conn = ping_set_get(&base.clone().protocol(Protocol::Resp2), "k2").await;
    assert_eq!(conn.protocol(), Protocol::Resp2);
    let flat = conn.request(&Cmd::new("HGETALL").arg("h")).await.unwrap();
    assert!(
        matches!(flat, Value::Array(ref items) if items.len() == 2),
        "{flat:?}"
    );
    let info = conn.request(&Cmd::new("CLIENT").arg("INFO")).await.unwrap();
    assert!(info.as_str().unwrap().contains("resp=2"));
}

#[tokio::test]
async fn unix_socket() {
    let server = Server::start(ServerConfig::new().unix_socket(true))
        .await
        .unwrap();
    let path = server.unix_socket_path().expect("socket path");
    let config = ConnectionConfig::unix(&path);
    let mut conn = ping_set_get(&config, "unix-key").await;
    let info = conn.request(&Cmd::new("CLIENT").arg("INFO")).await.unwrap();
    // The server flags Unix-socket clients with `U`.
    assert!(info.as_str().unwrap().contains("flags=U"), "{info:?}");
    // The same through a URL, with a database.
    let url = format!("unix://{}?db=5", path.display());
    let mut conn = ping_set_get(&url.parse().unwrap(), "unix-db5").await;
    let info = conn.request(&Cmd::new("CLIENT").arg("INFO")).await.unwrap();
    assert!(info.as_str().unwrap().contains(" db=5 "), "{info:?}");
}

#[tokio::test]
async fn acl_user_with_password_and_wrong_password() {
    let server = Server::start(ServerConfig::new().acl_user("app on >app-secret ~app:* +@all"))
        .await
        .unwrap();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let good = ConnectionConfig::tcp("127.0.0.1", server.port())
            .protocol(protocol)
            .username("app")
            .password("app-secret")
            .client_name("acl-test");
        let mut conn = ping_set_get(&good, "app:key").await;
        let who = conn.request(&Cmd::new("ACL").arg("WHOAMI")).await.unwrap();
        assert_eq!(who.as_str(), Some("app"));
        let name = conn
            .request(&Cmd::new("CLIENT").arg("GETNAME"))
            .await
            .unwrap();
        assert_eq!(name.as_str(), Some("acl-test"));
        // The ACL still applies: keys outside app:* are refused, and the
        // connection stays usable.
        let denied = conn
            .request(&Cmd::new("GET").arg("other"))
            .await
            .unwrap_err();
        assert_eq!(denied.kind(), ErrorKind::NoPermission, "{denied}");
        assert!(!conn.is_broken());

        let bad = good.clone().password("wrong-secret");
        let err = Connection::connect(&bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication, "{protocol:?}: {err}");
        assert!(!err.to_string().contains("wrong-secret"));
        let url = format!("valkey://app:wrong@127.0.0.1:{}", server.port());
        let err = Connection::connect(&url.parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication);
    }
}

#[tokio::test]
async fn a_refused_client_setinfo_is_ignored() {
    // A user that may not run CLIENT subcommands: the server refuses SETINFO
    // (as servers older than 7.2 refuse it as unknown), and the handshake
    // goes on without it.
    let server = Server::start(ServerConfig::new().acl_user("limited on >pw ~* +@all -client"))
        .await
        .unwrap();
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let config = ConnectionConfig::tcp("127.0.0.1", server.port())
            .protocol(protocol)
            .username("limited")
            .password("pw");
        let mut conn = Connection::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        let refused = conn
            .request(&Cmd::new("CLIENT").arg("SETINFO").arg("LIB-NAME").arg("x"))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::NoPermission, "{refused}");
        let pong = conn.request(&Cmd::new("PING")).await.unwrap();
        assert_eq!(pong.as_str(), Some("PONG"));
    }
}

#[tokio::test]
async fn default_user_password() {
    let server = Server::start(ServerConfig::new().password("pw"))
        .await
        .unwrap();
    let url = format!("valkey://:pw@127.0.0.1:{}", server.port());
    ping_set_get(&url.parse().unwrap(), "k").await;
    // Without a password the handshake itself is refused, in both protocols.
    for protocol in [Protocol::Resp3, Protocol::Resp2] {
        let anonymous = ConnectionConfig::tcp("127.0.0.1", server.port()).protocol(protocol);
        let err = Connection::connect(&anonymous).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Authentication, "{protocol:?}: {err}");
    }
    // A bare RESP2 connection (no handshake commands at all) gets in, and its
    // first command is refused.
    let bare = ConnectionConfig::tcp("127.0.0.1", server.port())
        .protocol(Protocol::Resp2)
        .set_lib_info(false);
    let mut anonymous = Connection::connect(&bare).await.unwrap();
    let err = anonymous
        .request(&Cmd::new("GET").arg("k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(
        anonymous.is_broken(),
        "authentication errors close the connection"
    );
}

#[tokio::test]
async fn select_non_zero_database() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let url = format!("valkey://127.0.0.1:{}/7", server.port());
    let mut db7 = ping_set_get(&url.parse().unwrap(), "only-in-7").await;
    let info = db7.request(&Cmd::new("CLIENT").arg("INFO")).await.unwrap();
    assert!(info.as_str().unwrap().contains(" db=7 "), "{info:?}");
    let mut db0 = Connection::connect(&ConnectionConfig::tcp("127.0.0.1", server.port()))
        .await
        .unwrap();
    let missing = db0
        .request(&Cmd::new("GET").arg("only-in-7"))
        .await
        .unwrap();
    assert!(missing.is_nil());
    // A database that does not exist is a clear error at connect time.
    let err = Connection::connect(&ConnectionConfig::tcp("127.0.0.1", server.port()).db(99))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response, "{err}");
    assert!(err.message().contains("DB index"), "{err}");
}

#[tokio::test]
async fn pipeline_keeps_order_and_per_command_errors() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = server.connect().await.unwrap();
    let replies = conn
        .pipeline(&[
            Cmd::new("SET").arg("s").arg("text"),
            Cmd::new("INCR").arg("s"),
            Cmd::new("INCR").arg("n"),
            Cmd::new("GET").arg("s"),
        ])
        .await
        .unwrap();
    assert!(replies[0].as_ref().unwrap().is_ok());
    assert_eq!(replies[1].as_ref().unwrap_err().kind(), ErrorKind::Response);
    assert_eq!(replies[2].as_ref().unwrap().as_int(), Some(1));
    assert_eq!(replies[3].as_ref().unwrap().as_str(), Some("text"));
}

#[tokio::test]
async fn pipeline_builder_sends_every_command_in_order() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = server.connect().await.unwrap();
    let mut pipe = valkey_client::Pipeline::new();
    for i in 0..150 {
        pipe.cmd("RPUSH").arg("list").arg(i);
    }
    // A command with more than nine arguments widens its header.
    pipe.cmd("SADD")
        .arg("set")
        .args((0..20).map(|i| format!("m{i}")));
    pipe.cmd("LLEN").arg("list");
    pipe.cmd("SCARD").arg("set");
    pipe.cmd("INCR").arg("list");
    let replies = conn.send_pipeline(&mut pipe).await.unwrap();
    assert_eq!(replies.len(), 154);
    for (i, reply) in replies[..150].iter().enumerate() {
        assert_eq!(reply.as_ref().unwrap().as_int(), Some(i as i64 + 1));
    }
    assert_eq!(replies[150].as_ref().unwrap().as_int(), Some(20));
    assert_eq!(replies[151].as_ref().unwrap().as_int(), Some(150));
    assert_eq!(replies[152].as_ref().unwrap().as_int(), Some(20));
    assert_eq!(
        replies[153].as_ref().unwrap_err().kind(),
        ErrorKind::Response
    );
}

#[tokio::test]
async fn refused_and_killed_connections_are_connection_errors() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = server.connect().await.unwrap();
    let port = server.port();
    server.kill();
    let err = conn.request(&Cmd::new("PING")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(conn.is_broken());
    let err = Connection::connect(&ConnectionConfig::tcp("127.0.0.1", port))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
}

#[tokio::test]
async fn loading_reply_is_busy_loading_and_closes() {
    // A real server sends LOADING only while it loads a large dataset (the
    // retry tests restart one with a large RDB); here a script raises a reply
    // of the same shape, which the server sends as it would its own.
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = server.connect().await.unwrap();
    let reply = conn
        .request(
            &Cmd::new("EVAL")
                .arg("return redis.error_reply('LOADING pretend')")
                .arg(0),
        )
        .await
        .unwrap_err();
    assert_eq!(reply.kind(), ErrorKind::BusyLoading, "{reply}");
    assert!(
        conn.is_broken(),
        "connection-family replies close the connection"
    );
}
