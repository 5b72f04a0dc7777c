//! Side-by-side benchmarks of `valkey-client` and its peers.
//!
//! [`clients`] wraps every measured client behind one enum so that each runs
//! exactly the same workload code; [`workloads`] holds those workloads, each
//! bounded by an operation count and a time cap. The peers (`redis`, `fred`,
//! `valkey-glide`) are compiled only with the `peers` feature.

pub mod allocs;
pub mod bare;
pub mod clients;
pub mod workloads;

/// The error type of the benchmarks: anything, with its message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result type of the benchmarks.
pub type Result<T> = std::result::Result<T, BoxError>;

/// The value stored by every SET and read by every GET: 64 bytes.
pub const VALUE: &[u8; 64] = &[b'x'; 64];

/// The key read by the GET workloads (also the key `redis-benchmark` uses
/// without `-r`, so that its GETs read the same 64-byte value).
pub const GET_KEY: &str = "key:__rand_int__";
