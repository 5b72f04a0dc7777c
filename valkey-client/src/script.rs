//! [`Script`]: a Lua script run by its SHA1 digest (`EVALSHA`), so its
//! source crosses the network only when a server does not have it cached.

use std::future::Future;
use std::sync::Arc;

use sha1::{Digest, Sha1};

use crate::client::Valkey;
use crate::cluster::ValkeyCluster;
use crate::cmd::{Cmd, ToArg};
use crate::error::{ErrorKind, Result};
use crate::from_value::FromValue;
use crate::resp::Value;

/// A Lua script, with its SHA1 digest computed once.
///
/// [`ScriptInvocation::invoke`] sends `EVALSHA`; a server that answers
/// `NOSCRIPT` (it restarted, or ran `SCRIPT FLUSH`) gets the script once with
/// `EVAL`, which runs it and caches it there for the next `EVALSHA`. `EVAL`
/// goes where the `EVALSHA` went (in a cluster: the owner of the keys' slot,
/// or a replica for [`ScriptInvocation::invoke_ro`] when the client reads
/// from replicas), so it loads the script on the node that lacked it, in the
/// same round trip as running it.
///
/// ```no_run
/// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
/// use valkey_client::Script;
/// let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
/// let n: i64 = script.key("counter").arg(5).invoke(&client).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Script {
    source: Arc<str>,
    hash: String,
}

impl Script {
    /// A script and its SHA1 digest.
    pub fn new(source: &str) -> Script {
        let digest = Sha1::digest(source.as_bytes());
        let mut hash = String::with_capacity(40);
        for byte in digest {
            hash.push(char::from(HEX[usize::from(byte >> 4)]));
            hash.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        Script {
            source: source.into(),
            hash,
        }
    }

    /// The SHA1 digest, in lowercase hex, as `SCRIPT LOAD` returns it.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// An invocation with this first key (`KEYS[1]`).
    pub fn key(&self, key: impl ToArg) -> ScriptInvocation<'_> {
        self.prepare_invoke().key(key)
    }

    /// An invocation with this first argument (`ARGV[1]`).
    pub fn arg(&self, arg: impl ToArg) -> ScriptInvocation<'_> {
        self.prepare_invoke().arg(arg)
    }

    /// An invocation with no key and no argument yet.
    pub fn prepare_invoke(&self) -> ScriptInvocation<'_> {
        ScriptInvocation {
            script: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Runs the script with no key and no argument.
    pub async fn invoke<T: FromValue>(&self, client: &impl ScriptClient) -> Result<T> {
        self.prepare_invoke().invoke(client).await
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A script with its keys and arguments, ready to run.
#[derive(Debug, Clone)]
pub struct ScriptInvocation<'s> {
    script: &'s Script,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl ScriptInvocation<'_> {
    /// Adds a key (`KEYS[n]`). In a cluster the keys must share a slot.
    pub fn key(mut self, key: impl ToArg) -> Self {
        self.keys.push(key.with_bytes(<[u8]>::to_vec));
        self
    }

    /// Adds an argument (`ARGV[n]`).
    pub fn arg(mut self, arg: impl ToArg) -> Self {
        self.args.push(arg.with_bytes(<[u8]>::to_vec));
        self
    }

    /// Runs the script (`EVALSHA`, and `EVAL` after a `NOSCRIPT`) and
    /// converts its reply. Like any `EVAL`, it is not retried once it may
    /// have run, unless the call or client opts in.
    pub async fn invoke<T: FromValue>(&self, client: &impl ScriptClient) -> Result<T> {
        self.run(client, "EVALSHA", "EVAL").await
    }

    /// Runs the script as read-only (`EVALSHA_RO`, and `EVAL_RO` after a
    /// `NOSCRIPT`): the server refuses its writes, and a cluster client may
    /// send it to a replica.
    pub async fn invoke_ro<T: FromValue>(&self, client: &impl ScriptClient) -> Result<T> {
        self.run(client, "EVALSHA_RO", "EVAL_RO").await
    }

    async fn run<T: FromValue>(
        &self,
        client: &impl ScriptClient,
        by_hash: &str,
        by_source: &str,
    ) -> Result<T> {
        let cmd = self.command(by_hash, self.script.hash.as_bytes());
        match client.run_script_command(&cmd).await {
            // NOSCRIPT proves it did not run: the source goes once.
            Err(err) if err.kind() == ErrorKind::NoScript => {
                let cmd = self.command(by_source, self.script.source.as_bytes());
                T::from_value(client.run_script_command(&cmd).await?)
            }
            reply => T::from_value(reply?),
        }
    }

    /// `name script numkeys key... arg...`.
    fn command(&self, name: &str, script: &[u8]) -> Cmd {
        Cmd::new(name)
            .arg(script)
            .arg(self.keys.len())
            .args(self.keys.iter().map(Vec::as_slice))
            .args(self.args.iter().map(Vec::as_slice))
    }
}

/// A client scripts run on: [`Valkey`] or [`ValkeyCluster`]. Sealed.
pub trait ScriptClient: sealed::Sealed {
    /// Runs one command of a script invocation, as the client's `request`
    /// does.
    #[doc(hidden)]
    fn run_script_command(&self, cmd: &Cmd) -> impl Future<Output = Result<Value>> + Send;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::Valkey {}
    impl Sealed for crate::ValkeyCluster {}
}

impl ScriptClient for Valkey {
    fn run_script_command(&self, cmd: &Cmd) -> impl Future<Output = Result<Value>> + Send {
        self.request::<Value>(cmd)
    }
}

impl ScriptClient for ValkeyCluster {
    fn run_script_command(&self, cmd: &Cmd) -> impl Future<Output = Result<Value>> + Send {
        self.request::<Value>(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_the_server_does() {
        // `SCRIPT LOAD "return 1"` answers this digest.
        let script = Script::new("return 1");
        assert_eq!(script.hash(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
        let cmd = script.key("k").arg(7).command("EVALSHA", b"h");
        let args: Vec<&[u8]> = cmd.arg_iter().collect();
        assert_eq!(args, [&b"EVALSHA"[..], b"h", b"1", b"k", b"7"]);
    }
}
