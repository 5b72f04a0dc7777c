//! Pub/sub: a `Subscriber` on a connection of its own, channels and
//! patterns, and its subscriptions restored after the connection is killed
//! (reported as `Event::Resubscribed`).
//!
//! ```text
//! cargo run --example pubsub
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example pubsub
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use support::check;
use tokio::sync::mpsc;
use tokio::time::timeout;
use valkey_client::pubsub::{Message, MessageKind, Subscriber};
use valkey_client::{Cmd, Commands, Event, Valkey};

/// Bounds every wait of this example.
const WAIT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> support::Result {
    let target = support::standalone().await?;

    // The listener gets the subscriber's events too: here, the report that
    // every subscription was restored after a reconnect.
    let (restored_tx, mut restored) = mpsc::unbounded_channel();
    let client = Valkey::builder()
        .url(&target.url)?
        .client_name("pubsub-example")
        .on_event(move |event| {
            if let Event::Resubscribed {
                channels,
                patterns,
                gap,
                ..
            } = event
            {
                println!("  restored {channels:?} and {patterns:?} after a gap of {gap:?}");
                let _ = restored_tx.send(channels.len() + patterns.len());
            }
        })
        .build()
        .await?;

    let mut sub = client.subscriber().await?;
    sub.subscribe(["example:orders"]).await?; // returns once confirmed
    sub.psubscribe(["example:news.*"]).await?;

    let receivers = client.publish("example:orders", "order 1").await?;
    client.publish("example:news.rust", "hello").await?;
    check(receivers >= 1, "PUBLISH reached the subscriber")?;
    let first = next(&mut sub).await?;
    let second = next(&mut sub).await?;
    println!(
        "received {:?} on {:?}",
        first.payload_str(),
        first.channel_str()
    );
    println!(
        "received {:?} on {:?} (pattern {:?})",
        second.payload_str(),
        second.channel_str(),
        second.pattern_str()
    );
    check(
        first.payload_str() == Some("order 1"),
        "the channel's message",
    )?;
    check(second.kind == MessageKind::Pattern, "the pattern's message")?;

    // Kill the subscriber's connection (found by its client name): it
    // reconnects and subscribes to everything again on its own.
    let clients = client.client_list().await?;
    let id = clients
        .lines()
        .find(|line| line.contains("name=pubsub-example") && line.contains(" sub=1 "))
        .and_then(|line| line.strip_prefix("id="))
        .and_then(|rest| rest.split(' ').next())
        .ok_or("the subscriber's connection is not in CLIENT LIST")?;
    let _: i64 = client
        .request(&Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id))
        .await?;
    println!("killed the subscriber's connection (id {id})");
    let count = timeout(WAIT, restored.recv())
        .await?
        .ok_or("listener gone")?;
    check(count == 2, "both subscriptions restored")?;

    client.publish("example:orders", "order 2").await?;
    let after = next(&mut sub).await?;
    println!("after the reconnect: {:?}", after.payload_str());
    check(
        after.payload_str() == Some("order 2"),
        "messages flow again",
    )?;
    check(sub.gaps() >= 1, "the subscriber counted the gap")?;

    println!("pubsub: all checks passed");
    Ok(())
}

/// The next message, within [`WAIT`].
async fn next(sub: &mut Subscriber) -> support::Result<Message> {
    Ok(timeout(WAIT, sub.next())
        .await?
        .ok_or("the subscriber ended")?)
}
