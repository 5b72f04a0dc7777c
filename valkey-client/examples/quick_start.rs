//! Quick start: connect, typed commands, any command with `Cmd`.
//!
//! ```text
//! cargo run --example quick_start
//! VALKEY_URL=valkey://127.0.0.1:6379/0 cargo run --example quick_start
//! ```

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;

use support::check;
use valkey_client::commands::SetOptions;
use valkey_client::{Cmd, Commands, Valkey};

#[tokio::main]
async fn main() -> support::Result {
    let target = support::standalone().await?;

    // One client per program: clones share its multiplexed connection.
    let client = Valkey::from_url(&target.url).await?;
    client
        .del(["qs:greeting", "qs:visits", "qs:user:1", "qs:session"])
        .await?;

    // Typed methods of `Commands`: fixed replies are declared (`incr` gives
    // an i64), the others take the type you name.
    client.set("qs:greeting", "hello").await?;
    let greeting: Option<String> = client.get("qs:greeting").await?;
    println!("GET qs:greeting -> {greeting:?}");
    check(greeting.as_deref() == Some("hello"), "SET then GET")?;

    let visits = client.incr("qs:visits").await?;
    let visits = visits + client.incrby("qs:visits", 10).await?;
    check(visits == 12, "INCR then INCRBY 10 give 1 and 11")?;

    // Optional arguments go through a small builder.
    let first: Option<String> = client
        .set_with("qs:session", "token", SetOptions::new().ex(60).nx())
        .await?;
    let second: Option<String> = client
        .set_with("qs:session", "other", SetOptions::new().ex(60).nx())
        .await?;
    println!("SET NX twice -> {first:?}, {second:?}");
    check(second.is_none(), "the second SET NX does nothing")?;
    check(client.ttl("qs:session").await? > 0, "the session expires")?;

    // Replies convert to collections and maps.
    client
        .hset("qs:user:1", [("name", "Ada"), ("lang", "en")])
        .await?;
    let user: HashMap<String, String> = client.hgetall("qs:user:1").await?;
    println!("HGETALL qs:user:1 -> {user:?}");
    check(
        user["name"] == "Ada" && user.len() == 2,
        "HSET then HGETALL",
    )?;

    // Any command, a module's included: `request` with a `Cmd`, or
    // `Commands::send` with the reply type named.
    let length: i64 = client
        .request(&Cmd::new("STRLEN").arg("qs:greeting"))
        .await?;
    let pong: String = client.send(Cmd::new("PING").arg("hi")).await?;
    println!("STRLEN -> {length}, PING hi -> {pong}");
    check(length == 5 && pong == "hi", "commands sent as Cmd")?;

    // Errors carry a kind, the server's code and message.
    let err = client.incr("qs:greeting").await.unwrap_err();
    println!("INCR on a string -> {err} (kind {:?})", err.kind());
    check(err.code() == Some("ERR"), "a server error reply")?;

    println!("quick_start: all checks passed");
    Ok(())
}
