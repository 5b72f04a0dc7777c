//! `valkey-bench-alloc [--port P] [--ops N]`: allocations per GET and per SET
//! through each client on the hot path (after a warm-up), counted by a
//! counting global allocator. Starts its own server unless `--port` is given.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use valkey_bench::Result;
use valkey_bench::allocs;
use valkey_bench::clients::Kind;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let ops: u64 = option("--ops").unwrap_or_else(|| "10000".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _server;
        let port = match option("--port") {
            Some(p) => p.parse()?,
            None => {
                let server =
                    valkey_testkit::Server::start(valkey_testkit::ServerConfig::new()).await?;
                let port = server.port();
                _server = server;
                port
            }
        };
        let kinds: Vec<Kind> = Kind::all()
            .into_iter()
            .filter(|k| *k != Kind::ValkeyRetry && !k.bare())
            .collect();
        let rows = allocs::measure(GLOBAL, &kinds, port, 1_000, ops).await?;
        println!(
            "Allocations per operation on the hot path ({ops} operations after 1000 of warm-up)"
        );
        allocs::print(&rows);
        Ok(())
    })
}
