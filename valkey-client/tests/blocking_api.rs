//! The blocking API against real servers: the same basic calls as the async
//! clients, and an error (not a panic) when called inside a runtime.

use valkey_client::blocking::{Valkey, ValkeyCluster};
use valkey_client::{Cmd, Commands, ErrorKind, Pipeline, Value};
use valkey_testkit::{Cluster, ClusterConfig, Server, ServerConfig};

/// The test kit is async: its servers start on a runtime of their own,
/// which is left before the blocking client runs.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

#[test]
fn standalone_basics() {
    let rt = runtime();
    let server = rt
        .block_on(Server::start(ServerConfig::new()))
        .expect("server");
    let client = Valkey::connect("127.0.0.1", server.port()).expect("connect");
    client.set("b:greeting", "hello").unwrap();
    let greeting: Option<String> = client.get("b:greeting").unwrap();
    assert_eq!(greeting.as_deref(), Some("hello"));
    assert_eq!(client.incr("b:n").unwrap(), 1);
    assert_eq!(client.incr("b:n").unwrap(), 2);
    let missing: Option<String> = client.get("b:missing").unwrap();
    assert_eq!(missing, None);
    let len: i64 = client
        .request(&Cmd::new("STRLEN").arg("b:greeting"))
        .unwrap();
    assert_eq!(len, 5);

    let mut pipe = Pipeline::new();
    pipe.set("b:p", 1).incr("b:p").get("b:p");
    let results = client.pipeline(&mut pipe).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[1].as_ref().ok().and_then(Value::as_int), Some(2));

    // A server error is an error, with its kind.
    let err = client.incr("b:greeting").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Response, "{err}");

    // Clones share the client; many threads call at once.
    std::thread::scope(|s| {
        for t in 0..4 {
            let c = client.clone();
            s.spawn(move || {
                for _ in 0..50 {
                    c.incr(format!("b:threads:{t}")).unwrap();
                }
            });
        }
    });
    for t in 0..4 {
        let n: i64 = client.get(format!("b:threads:{t}")).unwrap();
        assert_eq!(n, 50);
    }
    drop(client);
    drop(server);
}

#[test]
fn errors_inside_a_runtime_instead_of_panicking() {
    let rt = runtime();
    let server = rt
        .block_on(Server::start(ServerConfig::new()))
        .expect("server");
    let port = server.port();
    let client = Valkey::connect("127.0.0.1", port).expect("connect");
    rt.block_on(async {
        let err = Valkey::connect("127.0.0.1", port).unwrap_err();
        assert!(err.to_string().contains("inside an async runtime"), "{err}");
        let err = client.get::<Option<String>>("k").unwrap_err();
        assert!(err.to_string().contains("inside an async runtime"), "{err}");
        // Dropping a blocking client inside a runtime is fine too.
        drop(client);
    });
}

#[test]
fn unreachable_server_is_an_error() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Valkey::connect("127.0.0.1", port).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
}

#[test]
fn cluster_basics() {
    let rt = runtime();
    let cluster = rt
        .block_on(Cluster::start(ClusterConfig::default()))
        .expect("cluster");
    let client = ValkeyCluster::connect("127.0.0.1", cluster.node(0).port()).expect("connect");
    for i in 0..100 {
        client.set(format!("bc:{i}"), i).unwrap();
    }
    for i in 0..100 {
        let v: i64 = client.get(format!("bc:{i}")).unwrap();
        assert_eq!(v, i);
    }
    assert_eq!(client.incr("bc:counter").unwrap(), 1);
    let keys: Vec<String> = (0..100).map(|i| format!("bc:{i}")).collect();
    assert_eq!(client.del(&keys).unwrap(), 100);
    drop(client);
    drop(cluster);
}
