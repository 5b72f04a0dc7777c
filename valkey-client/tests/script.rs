//! Scripts and functions against real servers: `Script` runs by `EVALSHA`,
//! survives `SCRIPT FLUSH` (one `EVAL` loads it again where it was
//! missing), read-only invocations; `FUNCTION LOAD`, `FCALL`, `FCALL_RO`,
//! `FUNCTION LIST` and `FUNCTION DELETE`. Standalone in RESP2 and RESP3, and
//! in a cluster, routed by key (function libraries on every primary).

use valkey_client::Commands;
use valkey_client::{
    Cmd, Connection, ConnectionConfig, ErrorKind, Protocol, Script, Valkey, ValkeyCluster, Value,
};
use valkey_testkit::{Cluster, ClusterConfig, Server, ServerConfig};

mod common;
use common::local;

const INCRBY: &str = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
const GET: &str = "return redis.call('GET', KEYS[1])";

const LIBRARY: &str = "#!lua name=testlib
redis.register_function('lib_incrby', function(keys, args)
  return redis.call('INCRBY', keys[1], args[1])
end)
redis.register_function{function_name='lib_get', callback=function(keys, args)
  return redis.call('GET', keys[1])
end, flags={'no-writes'}}";

/// A client of `server` in RESP2, and one in RESP3.
async fn each_protocol(server: &Server) -> Vec<(Protocol, Valkey)> {
    let mut clients = Vec::new();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let client = local(server.port()).protocol(protocol);
        clients.push((protocol, client.build().await.unwrap()));
    }
    clients
}

/// `FUNCTION LIST LIBRARYNAME testlib`.
fn list_testlib() -> Cmd {
    Cmd::new("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("testlib")
}

/// How many times the server behind `conn` has run `command`.
async fn calls(conn: &mut Connection, command: &str) -> u64 {
    let info = conn
        .request(&Cmd::new("INFO").arg("commandstats"))
        .await
        .unwrap();
    let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_script_runs_by_hash_and_survives_script_flush() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut admin = server.connect().await.unwrap();
    for (protocol, client) in each_protocol(&server).await {
        let key = format!("n:{protocol:?}");
        let script = Script::new(INCRBY);
        // Not cached yet: NOSCRIPT, then EVAL loads and runs it.
        client
            .request::<()>(&Cmd::new("SCRIPT").arg("FLUSH"))
            .await
            .unwrap();
        let (evalsha, eval) = (
            calls(&mut admin, "evalsha").await,
            calls(&mut admin, "eval").await,
        );
        let n: i64 = script.key(&key).arg(5).invoke(&client).await.unwrap();
        assert_eq!(n, 5);
        let exists: Vec<i64> = client
            .request(&Cmd::new("SCRIPT").arg("EXISTS").arg(script.hash()))
            .await
            .unwrap();
        assert_eq!(exists, vec![1]);
        // Cached: EVALSHA alone.
        let n: i64 = script.key(&key).arg(2).invoke(&client).await.unwrap();
        assert_eq!(n, 7);
        assert_eq!(calls(&mut admin, "evalsha").await, evalsha + 2);
        assert_eq!(calls(&mut admin, "eval").await, eval + 1);

        // After SCRIPT FLUSH it still runs (once, not twice).
        client
            .request::<()>(&Cmd::new("SCRIPT").arg("FLUSH"))
            .await
            .unwrap();
        let n: i64 = script.key(&key).arg(1).invoke(&client).await.unwrap();
        assert_eq!(n, 8);
        assert_eq!(client.get::<i64>(&key).await.unwrap(), 8);

        // Read-only: EVALSHA_RO / EVAL_RO; a write in it is refused.
        let get = Script::new(GET);
        let v: String = get.key(&key).invoke_ro(&client).await.unwrap();
        assert_eq!(v, "8");
        let err = script
            .key(&key)
            .arg(1)
            .invoke_ro::<i64>(&client)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Response);
        assert!(
            err.message().contains("Write commands are not allowed"),
            "{err}"
        );
        // Keyless, no argument.
        let one: i64 = Script::new("return 1").invoke(&client).await.unwrap();
        assert_eq!(one, 1);
        // A script error is the script's, not a NOSCRIPT loop.
        let err = Script::new("return redis.call('NOSUCHCMD')")
            .invoke::<Value>(&client)
            .await
            .unwrap_err();
        assert_ne!(err.kind(), ErrorKind::NoScript);
    }
}

#[tokio::test]
async fn functions_load_call_list_and_delete() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    for (protocol, client) in each_protocol(&server).await {
        let name: String = client
            .request(&Cmd::new("FUNCTION").arg("LOAD").arg(LIBRARY))
            .await
            .unwrap();
        assert_eq!(name, "testlib");
        let key = format!("f:{protocol:?}");
        let n: i64 = client
            .request(&Cmd::new("FCALL").arg("lib_incrby").arg(1).arg(&key).arg(4))
            .await
            .unwrap();
        assert_eq!(n, 4);
        let v: String = client
            .request(&Cmd::new("FCALL_RO").arg("lib_get").arg(1).arg(&key))
            .await
            .unwrap();
        assert_eq!(v, "4");
        let list: Value = client.request(&list_testlib()).await.unwrap();
        assert!(format!("{list:?}").contains("lib_incrby"), "{list:?}");
        client
            .request::<()>(&Cmd::new("FUNCTION").arg("DELETE").arg("testlib"))
            .await
            .unwrap();
        let err = client
            .request::<Value>(&Cmd::new("FCALL").arg("lib_incrby").arg(1).arg(&key).arg(4))
            .await
            .unwrap_err();
        assert!(err.message().contains("not found"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_cluster_scripts_and_functions_route_by_key() {
    let cluster = Cluster::start(ClusterConfig::new(3, 0)).await.unwrap();
    let (host, port) = cluster.seed_addrs()[0].clone();
    let rc = ValkeyCluster::connect(&host, port).await.unwrap();
    let mut primaries = Vec::new();
    for primary in cluster.primaries() {
        primaries.push(
            Connection::connect(&ConnectionConfig::tcp("127.0.0.1", primary.port()))
                .await
                .unwrap(),
        );
    }

    // Keys all over the slots: each runs on its owner.
    let script = Script::new(INCRBY);
    let keys: Vec<String> = (0..60).map(|i| format!("s:{i}")).collect();
    for round in 1..=2i64 {
        for key in &keys {
            let n: i64 = script.key(key).arg(3).invoke(&rc).await.unwrap();
            assert_eq!(n, 3 * round);
        }
        // SCRIPT FLUSH reaches every node; the script still runs everywhere.
        rc.request::<Value>(&Cmd::new("SCRIPT").arg("FLUSH"))
            .await
            .unwrap();
        for conn in &mut primaries {
            let exists: Vec<i64> = valkey_client::FromValue::from_value(
                conn.request(&Cmd::new("SCRIPT").arg("EXISTS").arg(script.hash()))
                    .await
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(exists, vec![0]);
        }
    }
    // Each primary got the script loaded again by the keys it owns.
    for key in &keys {
        let n: i64 = script.key(key).arg(1).invoke(&rc).await.unwrap();
        assert_eq!(n, 7);
    }
    for conn in &mut primaries {
        let exists = conn
            .request(&Cmd::new("SCRIPT").arg("EXISTS").arg(script.hash()))
            .await
            .unwrap();
        assert_eq!(exists.as_slice().unwrap()[0].as_int(), Some(1));
    }
    let v: String = Script::new(GET).key("s:5").invoke_ro(&rc).await.unwrap();
    assert_eq!(v, "7");
    let one: i64 = Script::new("return 1").invoke(&rc).await.unwrap();
    assert_eq!(one, 1);
    let err = Script::new(GET)
        .key("a")
        .key("b")
        .invoke::<Value>(&rc)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CrossSlot);

    // FUNCTION LOAD and DELETE reach every primary; FCALL goes by key.
    rc.request::<Value>(&Cmd::new("FUNCTION").arg("LOAD").arg(LIBRARY))
        .await
        .unwrap();
    for conn in &mut primaries {
        let list = conn.request(&list_testlib()).await.unwrap();
        assert!(format!("{list:?}").contains("lib_incrby"), "{list:?}");
    }
    for key in &keys {
        let n: i64 = rc
            .request(&Cmd::new("FCALL").arg("lib_incrby").arg(1).arg(key).arg(1))
            .await
            .unwrap();
        assert_eq!(n, 8);
        let v: i64 = rc
            .request(&Cmd::new("FCALL_RO").arg("lib_get").arg(1).arg(key))
            .await
            .unwrap();
        assert_eq!(v, 8);
    }
    let list: Value = rc.request(&Cmd::new("FUNCTION").arg("LIST")).await.unwrap();
    assert!(format!("{list:?}").contains("testlib"), "{list:?}");
    rc.request::<Value>(&Cmd::new("FUNCTION").arg("DELETE").arg("testlib"))
        .await
        .unwrap();
    for conn in &mut primaries {
        let list = conn
            .request(&Cmd::new("FUNCTION").arg("LIST"))
            .await
            .unwrap();
        assert!(!format!("{list:?}").contains("testlib"), "{list:?}");
    }
}
