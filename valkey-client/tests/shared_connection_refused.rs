//! Commands that change or depend on the state of their connection are
//! refused on the shared connection, alone (`request`, `request_with`) and
//! in a `Pipeline` (alone or beside a `SET`): an error of kind
//! `StatefulCommand` that names the command and the API to use instead, with
//! nothing sent (a proxy counts what reaches the server). The connection then
//! still gives 16 concurrent tasks their own replies. A pipeline that is
//! exactly `MULTI ... EXEC` is allowed and returns the `EXEC` array; one with
//! a command after `EXEC` is refused.

mod common;

use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{CallOptions, Cmd, Error, ErrorKind, Pipeline, Valkey, Value};
use valkey_testkit::FaultProxy;

use common::{local, server_and_proxy};

/// Each refused command (as sent), the name its error must show, and a word
/// of the API the error must suggest.
const REFUSED: &[(&[&str], &str, &str)] = &[
    (&["SUBSCRIBE", "ch"], "SUBSCRIBE", "Subscriber"),
    (&["PSUBSCRIBE", "ch*"], "PSUBSCRIBE", "Subscriber"),
    (&["SSUBSCRIBE", "ch"], "SSUBSCRIBE", "Subscriber"),
    (&["UNSUBSCRIBE"], "UNSUBSCRIBE", "Subscriber"),
    (&["MULTI"], "MULTI", "Transaction"),
    (&["EXEC"], "EXEC", "Transaction"),
    (&["DISCARD"], "DISCARD", "Transaction"),
    (&["WATCH", "k"], "WATCH", "watch()"),
    (&["UNWATCH"], "UNWATCH", "Transaction"),
    (&["SELECT", "1"], "SELECT", "Valkey::select"),
    (
        &["CLIENT", "REPLY", "OFF"],
        "CLIENT REPLY",
        "dedicated Connection",
    ),
    // Lower case: names are matched without regard to case.
    (
        &["client", "tracking", "on"],
        "CLIENT TRACKING",
        "dedicated Connection",
    ),
    (&["MONITOR"], "MONITOR", "dedicated Connection"),
    (&["RESET"], "RESET", "dedicated Connection"),
    (&["HELLO", "3"], "HELLO", "builder"),
    (&["AUTH", "pw"], "AUTH", "builder"),
    (&["QUIT"], "QUIT", "drop the client"),
    (&["READONLY"], "READONLY", "dedicated Connection"),
    (&["READWRITE"], "READWRITE", "dedicated Connection"),
];

fn cmd(words: &[&str]) -> Cmd {
    Cmd::new(words[0]).args(&words[1..])
}

fn pipeline(cmds: &[Cmd]) -> Pipeline {
    let mut pipe = Pipeline::new();
    for c in cmds {
        pipe.add(c);
    }
    pipe
}

/// Whether `text` holds `name` as whole words (so `SUBSCRIBE` is not found
/// in `UNSUBSCRIBE`).
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphabetic())
            && !after.is_some_and(|c| c.is_ascii_alphabetic())
    })
}

/// `result` is the refusal of `shown`, suggesting `suggests`.
fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, Error>,
    shown: &str,
    suggests: &str,
    how: &str,
) {
    let err = result.expect_err(how);
    assert_eq!(err.kind(), ErrorKind::StatefulCommand, "{how}: {err}");
    let message = err.message();
    assert!(
        names(message, shown),
        "{how}: {message:?} does not name {shown}"
    );
    assert!(
        message.contains(suggests),
        "{how}: {message:?} does not suggest {suggests}"
    );
}

/// A client through the proxy with no retry, connected (its handshake is
/// the only traffic so far).
async fn client_through(proxy: &FaultProxy) -> Valkey {
    let client = local(proxy.port()).build().await.unwrap();
    client.ping().await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_commands_are_refused_unsent_and_others_still_get_their_replies() {
    let (_server, proxy) = server_and_proxy().await;
    let client = client_through(&proxy).await;
    let forwarded = proxy.commands_forwarded();
    let handshake_clients = proxy.commands_seen("CLIENT");
    let set = cmd(&["SET", "a", "1"]);
    for &(words, shown, suggests) in REFUSED {
        let refused = cmd(words);
        let how = format!("request {words:?}");
        assert_refused(
            client.request::<Value>(&refused).await,
            shown,
            suggests,
            &how,
        );
        let how = format!("request_with {words:?}");
        let with = client
            .request_with::<Value>(&refused, &CallOptions::new())
            .await;
        assert_refused(with, shown, suggests, &how);
        for (what, cmds) in [
            ("alone", vec![refused.clone()]),
            ("after a SET", vec![set.clone(), refused.clone()]),
            ("before a SET", vec![refused.clone(), set.clone()]),
        ] {
            let how = format!("pipeline of {words:?} {what}");
            let result = client.pipeline(&mut pipeline(&cmds)).await;
            assert_refused(result, shown, suggests, &how);
        }
    }
    // Nothing reached the server: not the refused commands, not the SETs
    // beside them.
    assert_eq!(proxy.commands_forwarded(), forwarded);
    assert_eq!(proxy.commands_seen("SET"), 0);
    assert_eq!(proxy.commands_seen("CLIENT"), handshake_clients);
    for name in [
        "SUBSCRIBE",
        "MULTI",
        "EXEC",
        "SELECT",
        "MONITOR",
        "QUIT",
        "RESET",
    ] {
        assert_eq!(proxy.commands_seen(name), 0, "{name} was sent");
    }

    // The connection is as it was: 16 tasks, 1,008 SET/GET pairs, each
    // task reading back its own unique values.
    let mut tasks = Vec::new();
    for t in 0..16 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..63 {
                let (key, value) = (format!("t{t}"), format!("{t}-{i}"));
                client.set(&key, &value).await.unwrap();
                let got: Option<String> = client.get(&key).await.unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(value.as_str()),
                    "task {t} got another's reply"
                );
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .expect("GET/SET after the refusals did not finish");
}

#[tokio::test]
async fn a_pipeline_that_is_one_transaction_runs_and_nothing_may_follow_its_exec() {
    let (_server, proxy) = server_and_proxy().await;
    let client = client_through(&proxy).await;
    let mut tx = pipeline(&[
        cmd(&["MULTI"]),
        cmd(&["SET", "a", "1"]),
        cmd(&["INCR", "a"]),
        cmd(&["EXEC"]),
    ]);
    let results = client.pipeline(&mut tx).await.unwrap();
    assert_eq!(results.len(), 4, "{results:?}");
    // MULTI: OK, then QUEUED twice, then the EXEC array: OK and 2.
    assert!(results[0].as_ref().unwrap().is_ok(), "{results:?}");
    for queued in &results[1..3] {
        assert_eq!(queued.as_ref().unwrap().as_str(), Some("QUEUED"));
    }
    let Ok(Value::Array(exec)) = &results[3] else {
        panic!("EXEC did not return an array: {results:?}");
    };
    assert_eq!(exec.len(), 2, "{exec:?}");
    assert!(exec[0].is_ok(), "{exec:?}");
    assert_eq!(exec[1].as_int(), Some(2), "{exec:?}");
    assert_eq!(proxy.commands_seen("MULTI"), 1);
    assert_eq!(proxy.commands_seen("EXEC"), 1);

    // A command after EXEC would ride outside the transaction: refused,
    // nothing of the pipeline sent.
    let forwarded = proxy.commands_forwarded();
    let mut trailing = pipeline(&[
        cmd(&["MULTI"]),
        cmd(&["SET", "a", "5"]),
        cmd(&["EXEC"]),
        cmd(&["GET", "a"]),
    ]);
    let result = client.pipeline(&mut trailing).await;
    assert_refused(result, "MULTI", "Transaction", "MULTI; SET; EXEC; GET");
    assert_eq!(proxy.commands_forwarded(), forwarded);
    // The transaction's writes stand, and the connection is not in a MULTI.
    let a: Option<i64> = client.get("a").await.unwrap();
    assert_eq!(a, Some(2));
}
