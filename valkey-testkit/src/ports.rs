//! Allocation of free loopback ports for test servers.
//!
//! Ports come from a process-wide atomic counter in [`PORT_RANGE`], starting at an
//! offset derived from the process id so that parallel test processes mostly use
//! different ports. A port is handed out only if both it and its cluster bus port
//! (`port + 10000`) can be bound on 127.0.0.1 at that moment. A race with another
//! process remains possible; servers that fail to start because their port was taken
//! are retried on a new port.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The range client ports are taken from. Cluster bus ports are `port + 10000`, so
/// they fall in `30000..40000`.
pub const PORT_RANGE: Range<u16> = 20000..30000;

/// Offset of the cluster bus port from the client port (Valkey's default).
pub const CLUSTER_BUS_OFFSET: u16 = 10000;

static COUNTER: OnceLock<AtomicU32> = OnceLock::new();

fn counter() -> &'static AtomicU32 {
    COUNTER.get_or_init(|| {
        let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
        // Spread processes apart: consecutive pids start ~250 ports apart.
        let start = std::process::id().wrapping_mul(251) % span;
        AtomicU32::new(start)
    })
}

/// Returns `true` if `port` can be bound on 127.0.0.1 right now.
pub fn is_port_free(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Returns a port on 127.0.0.1 that is free, together with its cluster bus port
/// (`port + 10000`), at the time of the call.
///
/// Safe to call from many threads at once: each call gets a different port until the
/// range wraps around.
///
/// # Panics
///
/// Panics if no free port is found in the whole range, which means the machine has
/// run out of loopback ports.
pub fn free_port() -> u16 {
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    for _ in 0..span {
        let offset = counter().fetch_add(1, Ordering::Relaxed) % span;
        let port = PORT_RANGE.start + offset as u16;
        if is_port_free(port) && is_port_free(port + CLUSTER_BUS_OFFSET) {
            return port;
        }
    }
    panic!("valkey-testkit: no free port pair found in {PORT_RANGE:?} (+{CLUSTER_BUS_OFFSET})");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_in_range() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ports.len());
        assert!(ports.iter().all(|p| PORT_RANGE.contains(p)));
    }

    #[test]
    fn busy_port_is_skipped() {
        let port = free_port();
        let _held = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(!is_port_free(port));
    }
}
