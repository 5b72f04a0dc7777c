//! Scans as async streams: `SCAN` (in a cluster, over every primary),
//! `HSCAN`, `SSCAN` and `ZSCAN`, with `MATCH`, `COUNT` and `TYPE`.
//!
//! A stream walks a cursor from `0` back to `0`, one request per page,
//! each through the client's retry policy (a `SCAN` step is a read, safe to
//! repeat), and yields the elements one by one. `SCAN` guarantees that an
//! element present from the start to the end of the walk is returned, at
//! least once (the server may return one twice while its table is resized;
//! elements added or removed meanwhile may or may not be returned). The
//! stream ends after the last page, or after yielding an error.

use std::future::Future;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use crate::client::Valkey;
use crate::cluster::ValkeyCluster;
use crate::cmd::{Cmd, ToArg};
use crate::error::{Error, ErrorKind, Result};
use crate::from_value::FromValue;
use crate::resp::Value;

/// The options of a scan: `MATCH pattern`, `COUNT n`, `TYPE kind`.
///
/// ```
/// use valkey_client::ScanIterOptions;
/// let opts = ScanIterOptions::new().pattern("user:*").count(1000).kind("hash");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ScanIterOptions {
    pattern: Option<Bytes>,
    count: Option<u64>,
    kind: Option<String>,
}

impl ScanIterOptions {
    /// No filter, the server's default page size.
    pub fn new() -> ScanIterOptions {
        ScanIterOptions::default()
    }

    /// `MATCH pattern`: only elements (keys, fields, members) matching the
    /// glob-style pattern. The server filters each page after reading it,
    /// so pages may come back empty.
    pub fn pattern(mut self, pattern: impl ToArg) -> ScanIterOptions {
        self.pattern = Some(pattern.with_bytes(Bytes::copy_from_slice));
        self
    }

    /// `COUNT n`: about how many elements the server looks at per page.
    pub fn count(mut self, count: u64) -> ScanIterOptions {
        self.count = Some(count);
        self
    }

    /// `TYPE kind` (`string`, `list`, `set`, `zset`, `hash`, `stream`, or
    /// a module type): only keys of this type. `SCAN` only: the other scans
    /// fail with an [`ErrorKind::Data`] error when it is set.
    pub fn kind(mut self, kind: impl Into<String>) -> ScanIterOptions {
        self.kind = Some(kind.into());
        self
    }

    /// One step: `name [key] cursor [MATCH p] [COUNT n] [TYPE t]`.
    fn step(&self, name: &str, key: Option<&[u8]>, cursor: &[u8]) -> Cmd {
        let mut cmd = Cmd::new(name);
        if let Some(key) = key {
            cmd.push_arg(key);
        }
        cmd.push_arg(cursor);
        if let Some(pattern) = &self.pattern {
            cmd.push_arg("MATCH").push_arg(&pattern[..]);
        }
        if let Some(count) = self.count {
            cmd.push_arg("COUNT").push_arg(count);
        }
        if let Some(kind) = &self.kind {
            cmd.push_arg("TYPE").push_arg(kind.as_str());
        }
        cmd
    }
}

/// Takes one item from a page's elements: one element, or a pair.
type Take<T> = fn(&mut std::vec::IntoIter<Value>) -> Option<Result<T>>;

fn one<T: FromValue>(elements: &mut std::vec::IntoIter<Value>) -> Option<Result<T>> {
    elements.next().map(T::from_value)
}

fn pair<A: FromValue, B: FromValue>(
    elements: &mut std::vec::IntoIter<Value>,
) -> Option<Result<(A, B)>> {
    let first = elements.next()?;
    let Some(second) = elements.next() else {
        return Some(Err(Error::new(
            ErrorKind::InvalidResponse,
            "a scan page of pairs had an odd number of elements",
        )));
    };
    Some(A::from_value(first).and_then(|a| Ok((a, B::from_value(second)?))))
}

/// Where one walk stands.
struct Walk<F, T> {
    fetch: F,
    name: &'static str,
    key: Option<Bytes>,
    options: ScanIterOptions,
    take: Take<T>,
    /// The next page's cursor; `None` once the walk is over.
    cursor: Option<Bytes>,
    /// The current page's elements not yet yielded.
    elements: std::vec::IntoIter<Value>,
    /// Options the command does not take: the walk yields this and ends.
    refused: Option<Error>,
}

/// Walks one cursor, from `0` back to `0`, on whatever `fetch` sends each
/// step's command to.
fn walk<T, F, Fut>(
    name: &'static str,
    key: Option<Bytes>,
    options: ScanIterOptions,
    take: Take<T>,
    fetch: F,
) -> impl Stream<Item = Result<T>>
where
    F: FnMut(Cmd) -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    let refused = (key.is_some() && options.kind.is_some()).then(|| {
        Error::new(
            ErrorKind::Data,
            format!("{name} takes no TYPE option; it filters keys, for SCAN"),
        )
    });
    let start = Walk {
        fetch,
        name,
        key,
        options,
        take,
        cursor: Some(Bytes::from_static(b"0")),
        elements: Vec::new().into_iter(),
        refused,
    };
    stream::unfold(start, |mut walk| async move {
        if let Some(err) = walk.refused.take() {
            walk.cursor = None;
            return Some((Err(err), walk));
        }
        // Each turn yields an element or fetches the next page (an empty
        // page, which MATCH often gives, fetches again); the server's cursor
        // reaches 0 after a bounded number of pages.
        loop {
            if let Some(item) = (walk.take)(&mut walk.elements) {
                return Some((item, walk));
            }
            let cursor = walk.cursor.take()?;
            let cmd = walk.options.step(walk.name, walk.key.as_deref(), &cursor);
            match (walk.fetch)(cmd).await.and_then(page) {
                Ok((next, elements)) => {
                    walk.cursor = (next.as_ref() != b"0").then_some(next);
                    walk.elements = elements.into_iter();
                }
                // The walk ends with its error (`cursor` is `None`).
                Err(err) => return Some((Err(err), walk)),
            }
        }
    })
}

/// A page: `[cursor, [elements...]]`.
fn page(reply: Value) -> Result<(Bytes, Vec<Value>)> {
    let invalid = || {
        Error::new(
            ErrorKind::InvalidResponse,
            "a scan reply was not [cursor, [elements]]",
        )
    };
    let Value::Array(parts) = reply else {
        return Err(invalid());
    };
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(elements), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let cursor = Bytes::from_value(cursor)?;
    let elements = Vec::<Value>::from_value(elements)?;
    Ok((cursor, elements))
}

/// The scans of one key (`HSCAN`, `SSCAN`, `ZSCAN`) and the walk under
/// them, the same on both clients, whose `request` routes each step
/// (in a cluster: to the node that serves the key's slot, as a read, so a
/// replica with a [`ReadFrom`](crate::ReadFrom) other than `Primary`;
/// redirections followed): written once.
macro_rules! key_scans {
    () => {
        /// Walks the fields of the hash at `key` with `HSCAN`: (field,
        /// value) pairs.
        pub fn hscan_iter<K: ToArg, F: FromValue, V: FromValue>(
            &self,
            key: K,
            options: ScanIterOptions,
        ) -> impl Stream<Item = Result<(F, V)>> + Send + use<K, F, V> {
            self.walk("HSCAN", Some(owned(key)), options, pair::<F, V>)
        }

        /// Walks the members of the set at `key` with `SSCAN`.
        pub fn sscan_iter<K: ToArg, T: FromValue>(
            &self,
            key: K,
            options: ScanIterOptions,
        ) -> impl Stream<Item = Result<T>> + Send + use<K, T> {
            self.walk("SSCAN", Some(owned(key)), options, one::<T>)
        }

        /// Walks the members of the sorted set at `key` with `ZSCAN`:
        /// (member, score) pairs.
        pub fn zscan_iter<K: ToArg, M: FromValue>(
            &self,
            key: K,
            options: ScanIterOptions,
        ) -> impl Stream<Item = Result<(M, f64)>> + Send + use<K, M> {
            self.walk("ZSCAN", Some(owned(key)), options, pair::<M, f64>)
        }

        /// A walk whose steps are this client's requests, under its retry
        /// policy.
        fn walk<T>(
            &self,
            name: &'static str,
            key: Option<Bytes>,
            options: ScanIterOptions,
            take: Take<T>,
        ) -> impl Stream<Item = Result<T>> + Send + use<T> {
            let client = self.clone();
            walk(name, key, options, take, move |cmd: Cmd| {
                let client = client.clone();
                async move { client.request::<Value>(&cmd).await }
            })
        }
    };
}

impl Valkey {
    /// Walks the keys of the database with `SCAN`, as a stream of keys
    /// (`Bytes`, `String`, ...). Each step goes through the client's retry
    /// policy.
    ///
    /// ```no_run
    /// # async fn demo(client: valkey_client::Valkey) -> valkey_client::Result<()> {
    /// use futures_util::TryStreamExt;
    /// use valkey_client::ScanIterOptions;
    /// let keys: Vec<String> = client
    ///     .scan_iter(ScanIterOptions::new().pattern("user:*").count(1000).kind("hash"))
    ///     .try_collect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn scan_iter<T: FromValue>(
        &self,
        options: ScanIterOptions,
    ) -> impl Stream<Item = Result<T>> + Send + use<T> {
        self.walk("SCAN", None, options, one::<T>)
    }

    key_scans!();
}

impl ValkeyCluster {
    /// Walks the keys of every primary with `SCAN`, one primary after the
    /// other (each step sent to its node with
    /// [`request_on`](ValkeyCluster::request_on)`(&Target::Node { .. })`,
    /// under that node's retry policy), as one stream of keys.
    ///
    /// The primaries are those of the client's view when the stream starts.
    /// A key that stays on one primary throughout is yielded (at least)
    /// once; a key whose slot moves to another primary during the walk may
    /// be yielded twice or not at all, since each node's `SCAN` guarantees
    /// only the keys it holds from start to end. A primary that fails ends
    /// the stream with its error.
    pub fn scan_iter<T: FromValue>(
        &self,
        options: ScanIterOptions,
    ) -> impl Stream<Item = Result<T>> + Send + use<T> {
        let rc = self.clone();
        let targets = async move {
            let targets = rc.primary_targets().await;
            (rc, targets)
        };
        stream::once(targets).flat_map(move |(rc, targets)| match targets {
            Ok(targets) => {
                let options = options.clone();
                stream::iter(targets)
                    .flat_map(move |target| {
                        let rc = rc.clone();
                        walk("SCAN", None, options.clone(), one::<T>, move |cmd: Cmd| {
                            let (rc, target) = (rc.clone(), target.clone());
                            async move { rc.request_on::<Value>(&target, &cmd).await }
                        })
                    })
                    .left_stream()
            }
            Err(err) => stream::once(async move { Err(err) }).right_stream(),
        })
    }

    key_scans!();
}

fn owned(key: impl ToArg) -> Bytes {
    key.with_bytes(Bytes::copy_from_slice)
}
