//! The blocking API: [`Valkey`] and [`ValkeyCluster`] without async code,
//! for programs that do not run an async runtime.
//!
//! Each client owns a small private tokio runtime (one worker thread,
//! shared by its clones) that keeps its connections, reconnects and
//! topology refreshes going; a call runs the async client's future to
//! completion on the calling thread, the way `reqwest::blocking` does. So
//! the retry policy, deadlines, pipelines and every typed method of
//! [`Commands`] behave exactly as in the async clients.
//!
//! Called from inside a tokio runtime (where blocking the thread would
//! stall the runtime's other tasks), every constructor and call returns an
//! error instead of panicking: use the async clients there.
//!
//! ```no_run
//! use valkey_client::Commands;
//! use valkey_client::blocking::Valkey;
//! let client = Valkey::connect("127.0.0.1", 6379)?;
//! client.set("greeting", "hello")?;
//! let greeting: Option<String> = client.get("greeting")?;
//! assert_eq!(greeting.as_deref(), Some("hello"));
//! # Ok::<(), valkey_client::Error>(())
//! ```

mod runtime;

use std::future::Future;

use crate::client::CallOptions;
use crate::cmd::Cmd;
use crate::commands::{Commands, ReplyAs};
use crate::error::Result;
use crate::from_value::FromValue;
use crate::pipeline::Pipeline;
use crate::resp::Value;
use crate::{ValkeyBuilder, ValkeyClusterBuilder};

use runtime::PrivateRuntime;

/// The blocking standalone client: [`crate::Valkey`] driven on a private
/// runtime. Cheap to clone; clones share the connection and the runtime.
#[derive(Clone, Debug)]
pub struct Valkey {
    client: crate::Valkey,
    runtime: PrivateRuntime,
}

/// The blocking cluster client: [`crate::ValkeyCluster`] driven on a
/// private runtime. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ValkeyCluster {
    client: crate::ValkeyCluster,
    runtime: PrivateRuntime,
}

impl Valkey {
    /// Builds a client from the async client's builder (every option
    /// applies) and connects, blocking until connected.
    pub fn build(builder: ValkeyBuilder) -> Result<Valkey> {
        let runtime = PrivateRuntime::new()?;
        let client = runtime.block_on(builder.build())??;
        Ok(Valkey { client, runtime })
    }

    /// Connects to `host:port` with the defaults (no retries).
    pub fn connect(host: &str, port: u16) -> Result<Valkey> {
        Valkey::build(crate::Valkey::builder().host(host).port(port))
    }

    /// Connects with a URL; see
    /// [`ConnectionConfig::from_url`](crate::ConnectionConfig::from_url).
    pub fn from_url(url: &str) -> Result<Valkey> {
        Valkey::build(crate::Valkey::builder().url(url)?)
    }

    /// Runs a command and converts its reply; see [`crate::Valkey::request`].
    pub fn request<T: FromValue>(&self, cmd: &Cmd) -> Result<T> {
        self.run(self.client.request(cmd))
    }

    /// Runs a command with per-call options.
    pub fn request_with<T: FromValue>(&self, cmd: &Cmd, options: &CallOptions) -> Result<T> {
        self.run(self.client.request_with(cmd, options))
    }

    /// Runs a pipeline; see [`crate::Valkey::pipeline`].
    pub fn pipeline(&self, pipe: &mut Pipeline) -> Result<Vec<Result<Value>>> {
        self.run(self.client.pipeline(pipe))
    }

    /// Runs a pipeline with per-call options.
    pub fn pipeline_with(
        &self,
        pipe: &mut Pipeline,
        options: &CallOptions,
    ) -> Result<Vec<Result<Value>>> {
        self.run(self.client.pipeline_with(pipe, options))
    }

    /// The async client inside, for code that has a runtime of its own.
    pub fn as_async(&self) -> &crate::Valkey {
        &self.client
    }

    fn run<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        self.runtime.block_on(future)?
    }
}

impl ValkeyCluster {
    /// Builds a cluster client from the async client's builder and reads
    /// the topology, blocking until done.
    pub fn build(builder: ValkeyClusterBuilder) -> Result<ValkeyCluster> {
        let runtime = PrivateRuntime::new()?;
        let client = runtime.block_on(builder.build())??;
        Ok(ValkeyCluster { client, runtime })
    }

    /// Connects to the cluster that `host:port` belongs to.
    pub fn connect(host: &str, port: u16) -> Result<ValkeyCluster> {
        ValkeyCluster::build(crate::ValkeyCluster::builder().seed(host, port))
    }

    /// Runs a command and converts its reply; see
    /// [`crate::ValkeyCluster::request`].
    pub fn request<T: FromValue>(&self, cmd: &Cmd) -> Result<T> {
        self.run(self.client.request(cmd))
    }

    /// Runs a command with per-call options.
    pub fn request_with<T: FromValue>(&self, cmd: &Cmd, options: &CallOptions) -> Result<T> {
        self.run(self.client.request_with(cmd, options))
    }

    /// Runs a command on the nodes `target` names; see
    /// [`crate::ValkeyCluster::request_on`].
    pub fn request_on<T: FromValue>(&self, target: &crate::Target, cmd: &Cmd) -> Result<T> {
        self.run(self.client.request_on(target, cmd))
    }

    /// Runs a pipeline; see [`crate::ValkeyCluster::pipeline`].
    pub fn pipeline(&self, pipe: &mut Pipeline) -> Result<Vec<Result<Value>>> {
        self.run(self.client.pipeline(pipe))
    }

    /// Reads the cluster topology again.
    pub fn refresh_topology(&self) -> Result<()> {
        self.run(self.client.refresh_topology())
    }

    /// The async client inside.
    pub fn as_async(&self) -> &crate::ValkeyCluster {
        &self.client
    }

    fn run<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        self.runtime.block_on(future)?
    }
}

impl<T> ReplyAs<T> for &Valkey {}
impl<T> ReplyAs<T> for &ValkeyCluster {}

/// Each method runs its command and returns the converted reply.
impl Commands for &Valkey {
    type Reply<T: FromValue + Send + 'static> = Result<T>;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> Result<T> {
        self.request(&cmd)
    }
}

/// Each method runs its command and returns the converted reply.
impl Commands for &ValkeyCluster {
    type Reply<T: FromValue + Send + 'static> = Result<T>;

    fn send<T: FromValue + Send + 'static>(self, cmd: Cmd) -> Result<T> {
        self.request(&cmd)
    }
}
