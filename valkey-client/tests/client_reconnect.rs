//! Reconnection: the handshake runs again, attempts are paced and jittered,
//! and the background loop gives up only when told to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use valkey_client::Commands;
use valkey_client::{Cmd, Event, Protocol, Valkey, ValkeyBuilder};
use valkey_testkit::{Server, ServerConfig};

/// The waits of every `Reconnecting` event, and whether it gave up.
#[derive(Clone, Default)]
struct Reconnects {
    waits: Arc<Mutex<Vec<Duration>>>,
    gave_up: Arc<Mutex<bool>>,
}

impl Reconnects {
    fn attach(&self, builder: ValkeyBuilder) -> ValkeyBuilder {
        let waits = self.waits.clone();
        let gave_up = self.gave_up.clone();
        builder.on_event(move |event| match event {
            Event::Reconnecting { wait, .. } => waits.lock().unwrap().push(*wait),
            Event::ReconnectGaveUp { .. } => *gave_up.lock().unwrap() = true,
            _ => {}
        })
    }
}

#[tokio::test]
async fn a_reconnect_runs_the_whole_handshake_again() {
    let server = Server::start(ServerConfig::new().acl_user("app on >pw ~* &* +@all"))
        .await
        .unwrap();
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .username("app")
        .password("pw")
        .db(3)
        .protocol(Protocol::Resp2)
        .client_name("reconnect-test")
        .build()
        .await
        .unwrap();
    client.set("k", "in-db-3").await.unwrap();
    let id: i64 = client.request(&Cmd::new("CLIENT").arg("ID")).await.unwrap();
    let mut admin = server.connect().await.unwrap();
    admin
        .request(&Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id))
        .await
        .unwrap();
    // No retry configured: the first command may fail; the next reconnects.
    let _ = client.ping().await;
    let info: String = client
        .request(&Cmd::new("CLIENT").arg("INFO"))
        .await
        .unwrap();
    assert!(!info.contains(&format!("id={id} ")), "{info}");
    assert!(info.contains(" db=3 "), "{info}");
    assert!(info.contains("name=reconnect-test "), "{info}");
    assert!(info.contains("resp=2 "), "{info}");
    assert!(info.contains("user=app "), "{info}");
    let got: String = client.get("k").await.unwrap();
    assert_eq!(got, "in-db-3");
}

#[tokio::test]
async fn background_reconnects_are_paced_jittered_and_recover() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let (a, b) = (Reconnects::default(), Reconnects::default());
    let builder = Valkey::builder().host("127.0.0.1").port(server.port());
    let client_a = a.attach(builder.clone()).build().await.unwrap();
    let client_b = b.attach(builder).build().await.unwrap();
    server.kill();
    let _ = client_a.ping().await;
    let _ = client_b.ping().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waits_a = a.waits.lock().unwrap().clone();
    let waits_b = b.waits.lock().unwrap().clone();
    // Never spinning: default_backoff waits 4..8, 8..16, ... up to 512 ms,
    // so 1.5 s holds only a handful of attempts.
    assert!(waits_a.len() >= 3, "too few attempts: {waits_a:?}");
    assert!(waits_a.len() <= 15, "reconnecting too eagerly: {waits_a:?}");
    assert!(waits_a.iter().all(|w| !w.is_zero()), "{waits_a:?}");
    // Never in lockstep: the two clients draw different waits.
    let n = waits_a.len().min(waits_b.len());
    assert_ne!(waits_a[..n], waits_b[..n], "jitter missing");
    // Never giving up by default, and back by itself once the server is.
    assert!(!*a.gave_up.lock().unwrap());
    server.restart().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let count_before = a.waits.lock().unwrap().len();
    client_a.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.waits.lock().unwrap().len(),
        count_before,
        "still reconnecting after recovery"
    );
}

#[tokio::test]
async fn background_reconnection_gives_up_only_when_configured() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let events = Reconnects::default();
    let client = events
        .attach(
            Valkey::builder()
                .host("127.0.0.1")
                .port(server.port())
                .max_reconnect_attempts(Some(3)),
        )
        .build()
        .await
        .unwrap();
    server.kill();
    let _ = client.ping().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(*events.gave_up.lock().unwrap(), "never gave up");
    assert_eq!(events.waits.lock().unwrap().len(), 3);
    // A command still tries on its own afterwards.
    server.restart().await.unwrap();
    client.ping().await.unwrap();
}
