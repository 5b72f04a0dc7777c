//! The command table against a live valkey-server: our key extraction gives
//! what the server's own `COMMAND GETKEYS` gives, and every command the
//! server knows is in the table.

use valkey_client::{Cmd, Value, command};
use valkey_testkit::{Server, ServerConfig};

fn cmd(words: &[&str]) -> Cmd {
    Cmd::new(words[0]).args(&words[1..])
}

#[tokio::test]
async fn keys_match_command_getkeys() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = server.connect().await.unwrap();
    let calls: &[&[&str]] = &[
        &["GET", "k"],
        &["MSET", "a", "1", "b", "2"],
        &["MGET", "a", "b", "c"],
        &["DEL", "a", "b"],
        &["EVAL", "return 1", "2", "k1", "k2", "arg"],
        &["ZUNIONSTORE", "dest", "2", "a", "b", "WEIGHTS", "1", "2"],
        &["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
        &["MIGRATE", "h", "6379", "", "0", "5000", "KEYS", "k1", "k2"],
        &["OBJECT", "ENCODING", "k"],
        &["XINFO", "STREAM", "s"],
        &["LMPOP", "2", "a", "b", "LEFT"],
        &["BLMPOP", "0", "2", "a", "b", "LEFT"],
        &["MSETEX", "2", "a", "1", "b", "2", "EX", "10"],
        &["GEORADIUS", "src", "1", "2", "3", "km", "STORE", "dst"],
        &["BITOP", "AND", "d", "a", "b"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["HSETEX", "h", "EX", "5", "FIELDS", "1", "f", "v"],
    ];
    for words in calls {
        let c = cmd(words);
        let getkeys = Cmd::new("COMMAND").arg("GETKEYS").args(*words);
        let server_keys: Vec<Vec<u8>> = match conn.request(&getkeys).await.unwrap() {
            Value::Array(keys) => keys
                .iter()
                .map(|k| k.as_bytes().unwrap().to_vec())
                .collect(),
            other => panic!("{words:?}: {other:?}"),
        };
        let ours: Vec<Vec<u8>> = command::keys(&c).map(<[u8]>::to_vec).collect();
        assert_eq!(ours, server_keys, "{words:?}");
    }
}

#[tokio::test]
async fn every_server_command_is_in_the_table() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut conn = server.connect().await.unwrap();
    let count = conn
        .request(&Cmd::new("COMMAND").arg("COUNT"))
        .await
        .unwrap();
    let top_level = command::all().iter().filter(|c| !c.name.contains('|'));
    assert_eq!(count.as_int(), Some(top_level.count() as i64));
    let names = conn
        .request(&Cmd::new("COMMAND").arg("LIST"))
        .await
        .unwrap();
    for name in names.as_slice().unwrap() {
        let name = name.as_bytes().unwrap();
        assert!(command::lookup(name).is_some(), "{name:?}");
    }
}
