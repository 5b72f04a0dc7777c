//! The typed command methods (`Commands`) against a real valkey-server, one
//! test per command family, each run in RESP2 and in RESP3: the arguments
//! each method writes must be what the server parses, and the replies must
//! convert into the types a caller would name, the same in both protocols.
//! The families are split by module; this file has what they share.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use valkey_client::commands::*;
use valkey_client::{Commands, FromValue, Pipeline, Protocol, Result, Transaction, Valkey, Value};
use valkey_testkit::{Server, ServerConfig};

/// A key of this protocol's run, so the two runs do not share data.
fn key(p: Protocol, name: &str) -> String {
    format!("{p:?}:{name}")
}

/// 2 or 3, for names that must differ between the runs (functions, users).
fn n(p: Protocol) -> u8 {
    if p == Protocol::Resp2 { 2 } else { 3 }
}

/// Whether two floats agree to `eps`.
fn near(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() <= eps
}

/// A client of `protocol`, named so `CLIENT GETNAME` has something to read.
async fn client(server: &Server, protocol: Protocol) -> Valkey {
    Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .protocol(protocol)
        .client_name(format!("families-{}", n(protocol)))
        .response_timeout(Some(Duration::from_secs(5)))
        .build()
        .await
        .expect("connect")
}

/// One test: a server, then the family's body once per protocol, each on
/// its own client. A failure names the protocol.
macro_rules! family {
    ($(#[$doc:meta])* $test:ident => $body:ident) => {
        $(#[$doc])*
        #[tokio::test]
        async fn $test() {
            let server = Server::start(ServerConfig::new()).await.expect("start valkey-server");
            for protocol in [Protocol::Resp2, Protocol::Resp3] {
                eprintln!("-- {protocol:?}");
                let client = client(&server, protocol).await;
                if let Err(e) = $body(protocol, &client).await {
                    panic!("{protocol:?}: {e}");
                }
            }
        }
    };
}

mod data_types;
mod server_side;
mod streams_and_more;
