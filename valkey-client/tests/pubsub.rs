//! The standalone `Subscriber` against real servers: delivery in RESP2 and
//! RESP3, 1,000 channels through two server restarts, `CLIENT KILL`, a
//! black-holed connection, a slow consumer under both overflow policies
//! (and a server that closes it), and the gap reported each time.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use valkey_client::pubsub::{MessageKind, Overflow, SubscriberOptions};
use valkey_client::{
    Cmd, Connection, Event, Message, Protocol, Subscriber, Valkey, ValkeyBuilder, Value,
};
use valkey_testkit::{FaultProxy, Server, ServerConfig};

mod common;

/// A gap the subscriber reported.
#[derive(Debug, Clone)]
struct Gap {
    channels: usize,
    patterns: usize,
    shard_channels: usize,
    gap: Duration,
    error: String,
}

/// The pub/sub events of one client.
#[derive(Clone, Default)]
struct Seen {
    gaps: Arc<Mutex<Vec<Gap>>>,
    dropped: Arc<Mutex<Vec<(u64, u64)>>>,
    reconnecting: Arc<Mutex<Vec<Duration>>>,
}

impl Seen {
    fn attach(&self, builder: ValkeyBuilder) -> ValkeyBuilder {
        let seen = self.clone();
        builder.on_event(move |event| match event {
            Event::Resubscribed {
                channels,
                patterns,
                shard_channels,
                gap,
                error,
                ..
            } => seen.gaps.lock().unwrap().push(Gap {
                channels: channels.len(),
                patterns: patterns.len(),
                shard_channels: shard_channels.len(),
                gap: *gap,
                error: error.to_string(),
            }),
            Event::MessagesDropped { dropped, total, .. } => {
                seen.dropped.lock().unwrap().push((*dropped, *total))
            }
            Event::Reconnecting { wait, .. } => seen.reconnecting.lock().unwrap().push(*wait),
            _ => {}
        })
    }

    fn gaps(&self) -> Vec<Gap> {
        self.gaps.lock().unwrap().clone()
    }

    /// Waits until `n` gaps were reported, up to `limit`.
    async fn wait_gaps(&self, n: usize, limit: Duration) -> Vec<Gap> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let gaps = self.gaps();
            if gaps.len() >= n || tokio::time::Instant::now() >= deadline {
                return gaps;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn client(server_port: u16, protocol: Protocol, seen: &Seen) -> Valkey {
    seen.attach(common::local(server_port))
        .protocol(protocol)
        .retry(common::patient_retry())
        .build()
        .await
        .expect("connect")
}

async fn publish(client: &Valkey, channel: &str, payload: &str) -> i64 {
    client
        .request::<i64>(&Cmd::new("PUBLISH").arg(channel).arg(payload))
        .await
        .expect("PUBLISH")
}

/// The next message, within 5 s.
async fn recv(sub: &mut Subscriber) -> Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a message within 5 s")
        .expect("the stream goes on")
}

/// `PUBSUB NUMSUB`: the subscriber count of each channel, in order.
async fn numsub(admin: &mut Connection, channels: &[String]) -> Vec<i64> {
    let reply = admin
        .request(&Cmd::new("PUBSUB").arg("NUMSUB").args(channels))
        .await
        .expect("PUBSUB NUMSUB");
    let flat: Vec<Value> = match reply {
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Array(items) => items,
        other => panic!("PUBSUB NUMSUB: {other:?}"),
    };
    flat.chunks(2).map(|kv| kv[1].as_int().unwrap()).collect()
}

/// Polls `PUBSUB NUMSUB` until every channel has a subscriber, up to
/// `limit`; whether they all did.
async fn wait_all_subscribed(server: &Server, channels: &[String], limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(mut admin) = server.connect().await
            && numsub(&mut admin, channels).await.iter().all(|&n| n == 1)
        {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes one message to every channel (each must reach one
/// subscriber) and checks that one arrives on each.
async fn every_channel_delivers(
    client: &Valkey,
    sub: &mut Subscriber,
    channels: &[String],
    round: u32,
) {
    for channel in channels {
        assert_eq!(
            publish(client, channel, &format!("r{round}")).await,
            1,
            "{channel}"
        );
    }
    let mut got = BTreeSet::new();
    while got.len() < channels.len() {
        let msg = recv(sub).await;
        if msg.payload_str() == Some(&format!("r{round}")) {
            got.insert(msg.channel_str().unwrap().to_string());
        }
    }
    let want: BTreeSet<String> = channels.iter().cloned().collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn messages_patterns_and_shard_channels_in_resp2_and_resp3() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let seen = Seen::default();
        let client = client(server.port(), protocol, &seen).await;
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe(["a", "b", "a"]).await.unwrap();
        sub.psubscribe(["news.*"]).await.unwrap();
        sub.ssubscribe(["s1"]).await.unwrap();
        assert_eq!(sub.channels(), ["a", "b"]);
        assert_eq!(sub.patterns(), ["news.*"]);
        assert_eq!(sub.shard_channels(), ["s1"]);

        assert_eq!(publish(&client, "a", "1").await, 1);
        assert_eq!(publish(&client, "news.today", "2").await, 1);
        let spublished: i64 = client
            .request(&Cmd::new("SPUBLISH").arg("s1").arg("3"))
            .await
            .unwrap();
        assert_eq!(spublished, 1);
        let first = recv(&mut sub).await;
        assert_eq!(
            (first.kind, first.channel_str(), first.payload_str()),
            (MessageKind::Message, Some("a"), Some("1"))
        );
        // The Stream interface gives the same messages.
        let second = tokio::time::timeout(Duration::from_secs(5), StreamExt::next(&mut sub))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.kind, MessageKind::Pattern);
        assert_eq!(second.pattern_str(), Some("news.*"));
        assert_eq!(second.channel_str(), Some("news.today"));
        let third = recv(&mut sub).await;
        assert_eq!(
            (third.kind, third.channel_str(), third.payload_str()),
            (MessageKind::Sharded, Some("s1"), Some("3"))
        );

        sub.unsubscribe(["a"]).await.unwrap();
        assert_eq!(sub.channels(), ["b"]);
        assert_eq!(publish(&client, "a", "gone").await, 0);
        sub.punsubscribe(Vec::<&str>::new()).await.unwrap();
        assert!(sub.patterns().is_empty());
        assert_eq!(publish(&client, "news.x", "gone").await, 0);
        assert_eq!(publish(&client, "b", "4").await, 1);
        assert_eq!(recv(&mut sub).await.payload_str(), Some("4"));
        assert!(sub.try_next().is_none());
        assert!(seen.gaps().is_empty(), "{protocol:?}: {:?}", seen.gaps());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_channels_survive_two_server_restarts() {
    let mut server = Server::start(ServerConfig::new()).await.unwrap();
    let seen = Seen::default();
    let client = client(server.port(), Protocol::Resp3, &seen).await;
    let mut sub = client.subscriber().await.unwrap();
    let channels: Vec<String> = (0..1000).map(|i| format!("channel:{i}")).collect();
    sub.subscribe(&channels).await.unwrap();
    assert_eq!(sub.channels().len(), 1000);
    assert!(wait_all_subscribed(&server, &channels, Duration::from_secs(1)).await);
    every_channel_delivers(&client, &mut sub, &channels, 0).await;

    for round in 1..=2u32 {
        // A clean restart, then a kill.
        if round == 1 {
            server.restart().await.unwrap();
        } else {
            server.kill();
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.restart().await.unwrap();
        }
        let gaps = seen
            .wait_gaps(round as usize, Duration::from_secs(10))
            .await;
        assert_eq!(gaps.len(), round as usize, "{gaps:?}");
        let gap = gaps.last().unwrap();
        assert_eq!(
            (gap.channels, gap.patterns, gap.shard_channels),
            (1000, 0, 0)
        );
        assert!(
            gap.gap > Duration::ZERO && gap.gap < Duration::from_secs(10),
            "{gap:?}"
        );
        assert!(
            wait_all_subscribed(&server, &channels, Duration::from_secs(1)).await,
            "round {round}: PUBSUB NUMSUB misses channels"
        );
        every_channel_delivers(&client, &mut sub, &channels, round).await;
        assert_eq!(sub.gaps(), u64::from(round));
        assert_eq!(sub.channels().len(), 1000);
    }
    // Reconnect attempts were paced, never back to back.
    let waits = seen.reconnecting.lock().unwrap().clone();
    assert!(!waits.is_empty());
    assert!(
        waits.iter().all(|w| *w >= Duration::from_millis(10)),
        "{waits:?}"
    );
}

#[tokio::test]
async fn a_killed_subscriber_connection_is_restored_in_both_protocols() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut admin = server.connect().await.unwrap();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let seen = Seen::default();
        let client = client(server.port(), protocol, &seen).await;
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe(["k1", "k2"]).await.unwrap();
        sub.psubscribe(["kp.*"]).await.unwrap();
        let killed: i64 = admin
            .request(&Cmd::new("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
            .await
            .unwrap()
            .as_int()
            .unwrap();
        assert_eq!(killed, 1);
        let gaps = seen.wait_gaps(1, Duration::from_secs(5)).await;
        assert_eq!(gaps.len(), 1, "{protocol:?}");
        assert_eq!((gaps[0].channels, gaps[0].patterns), (2, 1));
        assert!(gaps[0].error.contains("closed"), "{}", gaps[0].error);
        let counts = numsub(&mut admin, &["k1".into(), "k2".into()]).await;
        assert_eq!(counts, [1, 1]);
        assert_eq!(publish(&client, "k2", "after").await, 1);
        assert_eq!(publish(&client, "kp.x", "pattern").await, 1);
        assert_eq!(recv(&mut sub).await.payload_str(), Some("after"));
        assert_eq!(recv(&mut sub).await.pattern_str(), Some("kp.*"));
        drop(sub);
    }
}

#[tokio::test]
async fn a_black_holed_connection_is_noticed_by_its_ping() {
    let (server, proxy) = common::server_and_proxy().await;
    let seen = Seen::default();
    let client = seen
        .attach(common::local(proxy.port()))
        .response_timeout(Some(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    // Publishes go around the proxy.
    let publisher = common::patient_client(&server).await;
    let options = SubscriberOptions::new().ping_interval(Duration::from_millis(200));
    let mut sub = client.subscriber_with(options).await.unwrap();
    sub.subscribe(["quiet"]).await.unwrap();
    // Silence alone is not death: PINGs are answered.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(seen.gaps().is_empty());
    proxy.black_hole_open_connections();
    let gaps = seen.wait_gaps(1, Duration::from_secs(5)).await;
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0].error.contains("PING"), "{}", gaps[0].error);
    assert_eq!(publish(&publisher, "quiet", "back").await, 1);
    assert_eq!(recv(&mut sub).await.payload_str(), Some("back"));
}

/// Publishes `n` numbered messages to `channel`.
async fn flood(client: &Valkey, channel: &str, n: u32) {
    for i in 0..n {
        publish(client, channel, &i.to_string()).await;
    }
}

#[tokio::test]
async fn a_slow_consumer_gets_backpressure_or_loses_the_oldest() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let seen = Seen::default();
    let client = client(server.port(), Protocol::Resp3, &seen).await;

    // Backpressure: the buffer holds 10, the rest waits; nothing is lost.
    let mut sub = client
        .subscriber_with(SubscriberOptions::new().capacity(10))
        .await
        .unwrap();
    sub.subscribe(["flood"]).await.unwrap();
    flood(&client, "flood", 100).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sub.buffered_len(), 10);
    for i in 0..100 {
        assert_eq!(
            recv(&mut sub).await.payload_str(),
            Some(i.to_string().as_str())
        );
    }
    assert_eq!(sub.dropped(), 0);
    // A subscribe call behind a full buffer still returns (dropping the
    // oldest, counted) rather than waiting for a consumer that is itself.
    flood(&client, "flood", 30).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), sub.subscribe(["other"]))
        .await
        .expect("subscribe behind a full buffer returns")
        .unwrap();
    assert!(sub.dropped() > 0);
    assert_eq!(publish(&client, "other", "x").await, 1);
    loop {
        if recv(&mut sub).await.channel_str() == Some("other") {
            break;
        }
    }
    drop(sub);

    // Drop oldest: the newest 10 stay, 90 are dropped and reported.
    let mut sub = client
        .subscriber_with(
            SubscriberOptions::new()
                .capacity(10)
                .overflow(Overflow::DropOldest),
        )
        .await
        .unwrap();
    sub.subscribe(["flood"]).await.unwrap();
    flood(&client, "flood", 100).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sub.dropped() < 90 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sub.dropped(), 90);
    for i in 90..100 {
        assert_eq!(
            recv(&mut sub).await.payload_str(),
            Some(i.to_string().as_str())
        );
    }
    assert!(sub.try_next().is_none());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let reported: u64 = seen.dropped.lock().unwrap().iter().map(|(d, _)| d).sum();
        if reported >= 90 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dropped messages not reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_that_closes_a_slow_subscriber_causes_a_reported_gap() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let mut admin = server.connect().await.unwrap();
    admin
        .request(
            &Cmd::new("CONFIG")
                .arg("SET")
                .arg("client-output-buffer-limit")
                .arg("pubsub 65536 0 0"),
        )
        .await
        .unwrap();
    let seen = Seen::default();
    let client = client(server.port(), Protocol::Resp3, &seen).await;
    let mut sub = client
        .subscriber_with(SubscriberOptions::new().capacity(4))
        .await
        .unwrap();
    sub.subscribe(["big"]).await.unwrap();
    // Until the server gives up on the subscriber (past what the socket
    // buffers and its 64 KiB limit hold): a publish then reaches nobody.
    let payload = "x".repeat(100 * 1024);
    let mut published = 0;
    while publish(&client, "big", &payload).await == 1 {
        published += 1;
        assert!(
            published < 2000,
            "the server kept a subscriber that reads nothing"
        );
    }
    // The consumer catches up: what was buffered arrives, then the server's
    // close is found and the subscription restored.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let gaps = loop {
        let gaps = seen.gaps();
        if !gaps.is_empty() {
            break gaps;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never closed the subscriber"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), sub.next()).await;
    };
    assert_eq!(gaps[0].channels, 1);
    assert_eq!(publish(&client, "big", "small").await, 1);
    loop {
        if recv(&mut sub).await.payload_str() == Some("small") {
            break;
        }
    }
}

#[tokio::test]
async fn dropping_the_subscriber_closes_its_connection() {
    let server = Server::start(ServerConfig::new()).await.unwrap();
    let seen = Seen::default();
    let client = client(server.port(), Protocol::Resp3, &seen).await;
    let mut admin = server.connect().await.unwrap();
    let pubsub_clients = |list: Value| -> usize {
        String::from_utf8_lossy(list.as_bytes().unwrap())
            .lines()
            .count()
    };
    let mut sub = client.subscriber().await.unwrap();
    sub.subscribe(["x"]).await.unwrap();
    let list = Cmd::new("CLIENT").arg("LIST").arg("TYPE").arg("pubsub");
    assert_eq!(pubsub_clients(admin.request(&list).await.unwrap()), 1);
    drop(sub);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while pubsub_clients(admin.request(&list).await.unwrap()) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection stayed open"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(publish(&client, "x", "nobody").await, 0);
}

#[tokio::test]
async fn a_subscriber_reconnects_through_the_whole_handshake() {
    let mut server = Server::start(ServerConfig::new().acl_user("app on >pw ~* &* +@all"))
        .await
        .unwrap();
    let seen = Seen::default();
    let client = seen
        .attach(common::local(server.port()))
        .username("app")
        .password("pw")
        .client_name("sub-test")
        .protocol(Protocol::Resp2)
        .retry(common::patient_retry())
        .build()
        .await
        .unwrap();
    let mut sub = client.subscriber().await.unwrap();
    sub.subscribe(["auth"]).await.unwrap();
    // Debug output names no secret.
    assert!(!format!("{sub:?}").contains("pw"));
    common::bounce_under_load(&mut server).await;
    assert_eq!(seen.wait_gaps(1, Duration::from_secs(10)).await.len(), 1);
    let mut admin = server.connect().await.unwrap();
    let list = admin
        .request(&Cmd::new("CLIENT").arg("LIST").arg("TYPE").arg("pubsub"))
        .await
        .unwrap();
    let list = list.as_str().unwrap();
    assert!(list.contains("name=sub-test "), "{list}");
    assert!(list.contains("user=app "), "{list}");
    assert!(list.contains("resp=2 "), "{list}");
    assert_eq!(publish(&client, "auth", "ok").await, 1);
    assert_eq!(recv(&mut sub).await.payload_str(), Some("ok"));
}

#[tokio::test]
async fn a_bad_password_fails_when_the_subscriber_is_made() {
    let server = Server::start(ServerConfig::new().password("right"))
        .await
        .unwrap();
    let client = Valkey::builder()
        .host("127.0.0.1")
        .port(server.port())
        .password("wrong")
        .build_lazy();
    let err = client.subscriber().await.unwrap_err();
    assert_eq!(
        err.kind(),
        valkey_client::ErrorKind::Authentication,
        "{err}"
    );
}

/// The proxy lets the test cut the subscriber's connection over and over:
/// the reconnect waits grow rather than spin.
#[tokio::test]
async fn a_server_that_refuses_connections_gets_paced_attempts() {
    let (_server, proxy): (Server, FaultProxy) = common::server_and_proxy().await;
    let seen = Seen::default();
    let client = seen
        .attach(common::local(proxy.port()))
        .reconnect_backoff(valkey_client::NoBackoff)
        .retry(common::patient_retry())
        .build()
        .await
        .unwrap();
    let mut sub = client.subscriber().await.unwrap();
    sub.subscribe(["p"]).await.unwrap();
    proxy.refuse_connections(true);
    proxy.reset_all();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let attempts = seen.reconnecting.lock().unwrap().len();
    // NoBackoff is raised to 10, 20, 40, ... ms: a handful of attempts a
    // second, not thousands.
    assert!((3..=10).contains(&attempts), "{attempts} attempts in 1 s");
    proxy.refuse_connections(false);
    assert_eq!(seen.wait_gaps(1, Duration::from_secs(5)).await.len(), 1);
    assert_eq!(publish(&client, "p", "x").await, 1);
    assert_eq!(recv(&mut sub).await.payload_str(), Some("x"));
}

#[tokio::test]
async fn a_refused_subscribe_is_the_calls_error_and_nothing_else_changes() {
    let server = Server::start(
        ServerConfig::new().acl_user("limited on >pw ~* resetchannels &allowed:* +@all"),
    )
    .await
    .unwrap();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let client = common::local(server.port())
            .username("limited")
            .password("pw")
            .protocol(protocol)
            .build()
            .await
            .unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe(["allowed:1"]).await.unwrap();
        let err = sub.subscribe(["forbidden"]).await.unwrap_err();
        assert_eq!(err.kind(), valkey_client::ErrorKind::NoPermission, "{err}");
        assert_eq!(sub.channels(), ["allowed:1"]);
        sub.subscribe(["allowed:2"]).await.unwrap();
        assert_eq!(sub.channels(), ["allowed:1", "allowed:2"]);
        assert_eq!(publish(&client, "allowed:2", "yes").await, 1);
        assert_eq!(recv(&mut sub).await.payload_str(), Some("yes"));
    }
}
