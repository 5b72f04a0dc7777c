//! No futurelock on the shared connection: a request future polled once and
//! then held (in a `select!`, a collection, a busy task) holds up nobody but
//! itself, because only the connection's background task touches the
//! socket. Checked on the current-thread and multi-thread runtimes, and with
//! the holding task blocking its worker thread; the held future still gets
//! its own reply when it is polled again.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use valkey_client::Commands;
use valkey_client::Valkey;
use valkey_testkit::{Server, ServerConfig};

use common::local;

/// Bounds every wait: a futurelock hangs, this turns it into a failure.
const BOUND: Duration = Duration::from_secs(10);

/// GETs run by the other tasks: `TASKS * PER_TASK` = 1,000.
const TASKS: usize = 10;
const PER_TASK: usize = 100;

const HELD_VALUE: &str = "the held value";

/// Polls `fut` exactly once, with the calling task's waker.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx))).await
}

async fn client_of(server: &Server) -> Valkey {
    let client = local(server.port()).build().await.unwrap();
    client.set("held", HELD_VALUE).await.unwrap();
    for t in 0..TASKS {
        client.set(format!("k{t}"), format!("v{t}")).await.unwrap();
    }
    client
}

/// 1,000 GETs from `TASKS` spawned tasks on clones of `client`, each
/// checking it got its own value; fails the test if they do not all finish
/// within `BOUND`.
async fn gets_from_other_tasks(client: &Valkey) {
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let want = format!("v{t}");
            for _ in 0..PER_TASK {
                let got: Option<String> = client.get(format!("k{t}")).await.unwrap();
                assert_eq!(got.as_deref(), Some(want.as_str()), "task {t}");
            }
        }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(BOUND, all)
        .await
        .expect("1,000 GETs stalled while another request future was held");
}

/// A GET of "held" polled once and still pending. Its reply needs a round
/// trip, but on a loaded machine the polling thread can be preempted for
/// longer: a future answered at once would prove nothing, so that case is
/// tried again (a few times at most).
async fn held_get(client: &Valkey) -> impl Future<Output = valkey_client::Result<Option<String>>> {
    for _ in 0..20 {
        let mut held = Box::pin(client.get::<Option<String>>("held"));
        match poll_once(&mut held).await {
            Poll::Pending => return held,
            Poll::Ready(got) => assert_eq!(got.unwrap().as_deref(), Some(HELD_VALUE)),
        }
    }
    panic!("20 GETs in a row were answered on their first poll");
}

/// The scenario of both runtime flavours: hold a polled GET, run 1,000 GETs
/// beside it, then finish the held one.
async fn held_future_blocks_nobody() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = client_of(&server).await;
    let held = held_get(&client).await;
    gets_from_other_tasks(&client).await;
    let got = tokio::time::timeout(BOUND, held)
        .await
        .expect("the held GET never completed")
        .unwrap();
    assert_eq!(got.as_deref(), Some(HELD_VALUE));
}

#[tokio::test]
async fn held_future_blocks_nobody_current_thread() {
    held_future_blocks_nobody().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_future_blocks_nobody_multi_thread() {
    held_future_blocks_nobody().await;
}

/// How long the busy task keeps its worker thread.
const BUSY: Duration = Duration::from_millis(2000);

/// The held future's task keeps its worker thread busy (`work`) right after
/// the first poll: the other worker must still serve every other caller,
/// well before the busy task lets go.
async fn held_future_in_a_busy_task(work: fn()) {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let client = client_of(&server).await;
    // A flag, not a channel: a channel's send would wake this task into the
    // busy worker's LIFO slot, and the test itself would stall there.
    let polled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held_client = client.clone();
    // Let the connection's driver task go idle, as it is between bursts of
    // requests: the busy task's request then has to wake it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let signal = polled.clone();
    let busy = tokio::spawn(async move {
        let held = held_get(&held_client).await;
        signal.store(true, std::sync::atomic::Ordering::Release);
        work();
        held.await
    });
    let waiting = Instant::now();
    while !polled.load(std::sync::atomic::Ordering::Acquire) {
        assert!(
            waiting.elapsed() < BOUND,
            "the busy task never polled its GET"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start = Instant::now();
    gets_from_other_tasks(&client).await;
    let took = start.elapsed();
    // Well under BUSY: the GETs did not wait for the busy task.
    assert!(
        took < BUSY / 2 && !busy.is_finished(),
        "1,000 GETs took {took:?}, behind a task busy for {BUSY:?}"
    );
    let got = tokio::time::timeout(BOUND, busy)
        .await
        .expect("the held GET never completed")
        .unwrap()
        .unwrap();
    assert_eq!(got.as_deref(), Some(HELD_VALUE));
}

/// CPU work that never yields, on the worker thread itself. The busy task's
/// request woke the driver task, and tokio keeps a task woken from a worker
/// in that worker's LIFO slot, which other workers do not steal
/// (tokio-rs/tokio#4941): without the connection's guard wake the shared
/// connection stalled for `BUSY` here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_future_in_a_busy_task_blocks_nobody() {
    held_future_in_a_busy_task(|| std::thread::sleep(BUSY)).await;
}

/// The same work under `block_in_place`, which hands the worker's queued
/// tasks (the LIFO slot included) to another thread first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_future_in_a_task_in_block_in_place_blocks_nobody() {
    held_future_in_a_busy_task(|| tokio::task::block_in_place(|| std::thread::sleep(BUSY))).await;
}
