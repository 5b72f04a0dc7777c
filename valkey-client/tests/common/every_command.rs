//! The harness of `every_command.rs` (generated): a server, a client of
//! the protocol asked for, and a log that fails the test on any call whose
//! reply did not convert, or whose error says the command was malformed.

use std::collections::BTreeMap;

use valkey_client::{Protocol, Result, Valkey};
use valkey_testkit::{Server, ServerConfig};

/// Commands the test does not call: they stop the server, make it a
/// replica, or crash it on purpose.
const NOT_CALLED: &[&str] = &["shutdown", "debug", "replicaof", "slaveof", "failover"];

/// Commands whose sample call lacks an optional argument the server needs
/// with the sample's other choices (`GEOSEARCH ... BYRADIUS` needs a
/// `FROMMEMBER` or `FROMLONLAT`): their arity error is expected here, and
/// `families.rs` calls them with complete arguments.
const NEEDS_OPTIONS: &[&str] = &["geosearch", "geosearchstore"];

/// Server errors that mean the command's shape was wrong: the generated
/// method wrote its arguments in a way the server does not parse.
const SHAPE_ERRORS: &[&str] = &[
    "syntax error",
    "wrong number of arguments",
    "unknown command",
    "unknown subcommand",
];

/// What the calls gave.
#[derive(Default)]
pub struct Log {
    calls: usize,
    converted: usize,
    server_errors: BTreeMap<String, String>,
    failures: Vec<String>,
}

impl Log {
    /// Whether the test calls this command.
    pub fn wanted(&self, command: &str) -> bool {
        !NOT_CALLED.contains(&command)
    }

    /// Records one call's result.
    pub fn record<T>(&mut self, method: &str, command: &str, result: Result<T>) {
        self.calls += 1;
        match result {
            Ok(_) => self.converted += 1,
            Err(e) if e.server_error().is_some() => {
                let text = e.to_string();
                let lower = text.to_ascii_lowercase();
                if SHAPE_ERRORS.iter().any(|s| lower.contains(s))
                    && !NEEDS_OPTIONS.contains(&command)
                {
                    self.failures
                        .push(format!("{method} ({command}): malformed: {text}"));
                } else {
                    self.server_errors.insert(method.to_string(), text);
                }
            }
            Err(e) => self.failures.push(format!("{method} ({command}): {e}")),
        }
    }

    /// Prints the counts and fails on any failure.
    pub fn finish(self) {
        println!(
            "{} calls: {} replies converted to the declared type, {} server errors about the sample values",
            self.calls,
            self.converted,
            self.server_errors.len()
        );
        for (method, error) in &self.server_errors {
            println!("  {method}: {error}");
        }
        assert!(
            self.failures.is_empty(),
            "{} failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        // Most calls must reach a reply: a generator that wrote every
        // command wrong would otherwise pass on server errors alone.
        assert!(
            self.converted * 2 > self.calls,
            "only {} of {} calls converted",
            self.converted,
            self.calls
        );
    }
}

/// A server and a client speaking RESP `protocol` (2 or 3).
pub async fn start(protocol: u8) -> (Server, Valkey, Log) {
    let server = Server::start(ServerConfig::new())
        .await
        .expect("start valkey-server");
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .protocol(if protocol == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        })
        .response_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .await
        .expect("connect");
    (server, client, Log::default())
}
