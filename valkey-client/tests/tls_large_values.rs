//! Large values over TLS on the shared (multiplexed) connection: 64 tasks
//! each SET and GET back a 1 MiB value of their own, and a pipeline of 64
//! SETs of 256 KiB goes out in one piece (then 64 GETs), over a fast link
//! and over a slow one. Every value must come back byte for byte, to the
//! task that wrote it, within a bound.
//!
//! The TLS layer takes plaintext, seals it into records and writes what the
//! socket takes; when the socket fills up just as the last plaintext of a
//! write was taken, the write returns with records still held inside, and
//! only a flush (or a later write) sends them. A driver that did not flush
//! would leave the tail of a request in the client while its caller waits
//! for a reply: the call would time out. On the slow link the socket is full
//! most of the time; `writes_that_fill_the_socket_leave_whole` repeats such
//! writes with a single caller (no later write to carry a stuck tail), and
//! without the flush about 4 in 10 of them stalled when it was written.
use std::time::{Duration, Instant};

use bytes::Bytes;
use valkey_client::{CallOptions, Commands, Pipeline, Valkey};
use valkey_testkit::{FaultProxy, Server, TlsOptions, TlsTerminator};

mod common;

use common::{server_behind_tls, tls_config};

/// Everything in one test must finish within this, or it fails.
const BOUND: Duration = Duration::from_secs(60);

/// The link between the client and the server.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// stunnel straight in front of the server.
    Fast,
    /// A fault proxy between stunnel and the server that pauses before each
    /// batch it forwards: stunnel stops reading meanwhile and the client's
    /// socket fills up. (A pause of 1 ms fills it as well as longer ones,
    /// and keeps the tests quick.)
    Slow,
}

/// What serves one link; dropped, it stops every process it started.
struct Served {
    _server: Server,
    _proxy: Option<FaultProxy>,
    tls: TlsTerminator,
}

async fn serve(link: Link) -> Served {
    match link {
        Link::Fast => {
            let (server, tls) = server_behind_tls(false).await;
            Served {
                _server: server,
                _proxy: None,
                tls,
            }
        }
        Link::Slow => {
            let (server, proxy) = common::server_and_proxy().await;
            proxy.set_latency(Duration::from_millis(1));
            let tls = TlsTerminator::start(proxy.port(), TlsOptions::default())
                .await
                .expect("start the TLS terminator");
            Served {
                _server: server,
                _proxy: Some(proxy),
                tls,
            }
        }
    }
}

/// A client of the shared connection through the TLS terminator; the
/// request timeout makes a stalled call fail instead of hanging.
async fn tls_client(tls: &TlsTerminator) -> Valkey {
    Valkey::builder()
        .connection_config(tls_config(tls, "127.0.0.1", tls.ca_cert_pem()))
        .request_timeout(Some(Duration::from_secs(20)))
        .build()
        .await
        .unwrap_or_else(|e| panic!("connect over TLS: {e}\n{}", tls.log_tail(20)))
}

/// `len` bytes that differ from every other seed's all along, not just in
/// a prefix (xorshift64).
fn value(seed: u64, len: usize) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Where two values part, for a readable failure.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    format!(
        "got {} bytes, want {}; first difference at {at:?}",
        got.len(),
        want.len()
    )
}

async fn sixty_four_tasks(link: Link) {
    const TASKS: u64 = 64;
    const LEN: usize = 1024 * 1024;
    let served = serve(link).await;
    let client = tls_client(&served.tls).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                let key = format!("big:{task}");
                let want = value(task, LEN);
                client
                    .set(&key, &want)
                    .await
                    .unwrap_or_else(|e| panic!("task {task} SET: {e}"));
                let got: Bytes = client
                    .get(&key)
                    .await
                    .unwrap_or_else(|e| panic!("task {task} GET: {e}"));
                assert!(
                    got == want,
                    "task {task}: {}",
                    first_difference(&got, &want)
                );
            })
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await.expect("a task failed");
        }
    };
    tokio::time::timeout(BOUND, all).await.unwrap_or_else(|_| {
        panic!(
            "{link:?}: not done within {BOUND:?}\n{}",
            served.tls.log_tail(20)
        )
    });
    println!(
        "{link:?} link: {TASKS} tasks x SET + GET of 1 MiB over TLS in {:.1?}",
        started.elapsed()
    );
}

async fn pipelines(link: Link) {
    const COMMANDS: u64 = 64;
    const LEN: usize = 256 * 1024;
    let served = serve(link).await;
    let client = tls_client(&served.tls).await;
    let values: Vec<Bytes> = (0..COMMANDS).map(|i| value(1000 + i, LEN)).collect();
    let started = Instant::now();
    let run = async {
        // 16 MiB in one write.
        let mut sets = Pipeline::new();
        for (i, v) in values.iter().enumerate() {
            sets.cmd("SET").arg(format!("piped:{i}")).arg(v);
        }
        let results = client.pipeline(&mut sets).await.expect("send the SETs");
        assert_eq!(results.len(), values.len());
        for (i, result) in results.iter().enumerate() {
            let reply = result
                .as_ref()
                .unwrap_or_else(|e| panic!("{link:?}: SET {i}: {e}"));
            assert!(reply.is_ok(), "{link:?}: SET {i}: {reply:?}");
        }
        // And back, as one pipeline too: 16 MiB of replies.
        let mut gets = Pipeline::new();
        for i in 0..values.len() {
            gets.cmd("GET").arg(format!("piped:{i}"));
        }
        let results = client.pipeline(&mut gets).await.expect("send the GETs");
        assert_eq!(results.len(), values.len());
        for (i, (result, want)) in results.iter().zip(&values).enumerate() {
            let got = result
                .as_ref()
                .unwrap_or_else(|e| panic!("{link:?}: GET {i}: {e}"))
                .as_bytes()
                .unwrap_or_else(|| panic!("{link:?}: GET {i} gave no bytes"));
            assert!(
                got == want,
                "{link:?}: GET {i}: {}",
                first_difference(got, want)
            );
        }
    };
    tokio::time::timeout(BOUND, run).await.unwrap_or_else(|_| {
        panic!(
            "{link:?}: not done within {BOUND:?}\n{}",
            served.tls.log_tail(20)
        )
    });
    println!(
        "{link:?} link: pipelines of {COMMANDS} x 256 KiB SET, then GET, over TLS in {:.1?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_set_and_get_a_mebibyte_each() {
    sixty_four_tasks(Link::Fast).await;
    sixty_four_tasks(Link::Slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_of_sixty_four_quarter_mebibyte_sets() {
    pipelines(Link::Fast).await;
    pipelines(Link::Slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_fill_the_socket_leave_whole() {
    const REPEATS: u64 = 16;
    const COMMANDS: u64 = 32;
    const LEN: usize = 256 * 1024;
    let served = serve(Link::Slow).await;
    let client = tls_client(&served.tls).await;
    // About 100 ms each when nothing stalls.
    let bound = CallOptions::new().timeout(Duration::from_secs(5));
    let started = Instant::now();
    let mut values = Vec::new();
    for repeat in 0..REPEATS {
        // 8 MiB in one write, more than the socket and stunnel buffer: the
        // socket fills while it is written. The only caller waits for the
        // replies, so nothing else is written meanwhile.
        values = (0..COMMANDS)
            .map(|i| value(repeat * COMMANDS + i, LEN))
            .collect();
        let mut sets = Pipeline::new();
        for (i, v) in values.iter().enumerate() {
            sets.cmd("SET").arg(format!("filled:{i}")).arg(v);
        }
        let results = client
            .pipeline_with(&mut sets, &bound)
            .await
            .expect("send the SETs");
        for (i, result) in results.iter().enumerate() {
            if let Err(e) = result {
                panic!("write {repeat}, SET {i}: {e}\n{}", served.tls.log_tail(20));
            }
        }
    }
    // The last write's values arrived whole.
    let mut gets = Pipeline::new();
    for i in 0..values.len() {
        gets.cmd("GET").arg(format!("filled:{i}"));
    }
    let results = client
        .pipeline_with(&mut gets, &bound)
        .await
        .expect("send the GETs");
    for (i, (result, want)) in results.iter().zip(&values).enumerate() {
        let got = result
            .as_ref()
            .unwrap_or_else(|e| panic!("GET {i}: {e}"))
            .as_bytes()
            .unwrap_or_else(|| panic!("GET {i} gave no bytes"));
        assert!(got == want, "GET {i}: {}", first_difference(got, want));
    }
    println!(
        "Slow link: {REPEATS} writes of {COMMANDS} x 256 KiB over TLS in {:.1?}",
        started.elapsed()
    );
}
