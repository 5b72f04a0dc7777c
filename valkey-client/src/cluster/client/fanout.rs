//! Commands that run on several nodes: multi-key commands split by slot
//! (`MGET`, `MSET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH`), keyless commands
//! sent to every primary or every node, and explicit targets. Replies are
//! merged in key order, or combined by the command's response policy.

use futures_util::future::join_all;
use tokio::time::Instant;
use tracing::Span;

use super::single::Place;
use super::{Shared, Target};
use crate::client::{CallOptions, Mode, Single, Valkey};
use crate::cluster::slot::key_slot;
use crate::cmd::Cmd;
use crate::command::ResponsePolicy;
use crate::error::{Error, ErrorKind, Result};
use crate::resp::Value;

impl Shared {
    /// A multi-key command whose keys span slots: one command per slot,
    /// all in parallel, each through the cluster's loop; the replies merged
    /// in key order. Not atomic across slots.
    pub(super) async fn split_by_slot(
        &self,
        cmd: &Cmd,
        group: usize,
        deadline: Option<Instant>,
        opted_in: bool,
    ) -> Result<Value> {
        let name = cmd.name();
        let args: Vec<&[u8]> = cmd.arg_iter().skip(1).collect();
        if group == 0 || !args.len().is_multiple_of(group) {
            return Err(Error::new(
                ErrorKind::Data,
                format!("{name} takes its arguments in groups of {group}"),
            ));
        }
        // (slot, its command, the key positions it carries)
        let mut parts: Vec<(u16, Cmd, Vec<usize>)> = Vec::new();
        for (position, chunk) in args.chunks(group).enumerate() {
            let slot = key_slot(chunk[0]);
            let part = match parts.iter_mut().find(|(s, ..)| *s == slot) {
                Some(part) => part,
                None => {
                    parts.push((slot, Cmd::new(name), Vec::new()));
                    parts.last_mut().expect("just pushed")
                }
            };
            for arg in chunk {
                part.1.push_arg(*arg);
            }
            part.2.push(position);
        }
        let readonly = matches!(name.to_ascii_lowercase().as_str(), "mget" | "exists");
        // Each part runs on one node, the call on several: no part records
        // its node on the call's span.
        let no_span = Span::none();
        let runs = parts.iter().map(|(slot, part, _)| {
            let place = Place::Slot {
                slot: *slot,
                readonly,
            };
            self.run(part, Mode::Shared, place, deadline, opted_in, &no_span)
        });
        let replies = join_all(runs).await;
        let keys = args.len() / group;
        merge_split(name, keys, &parts, replies)
    }

    /// A keyless command on every primary (or every node), in parallel; the
    /// replies combined by `policy`. Each node's `retry` applies.
    pub(super) async fn fan_out(
        &self,
        cmd: &Cmd,
        all_nodes: bool,
        policy: Option<ResponsePolicy>,
        deadline: Option<Instant>,
        opted_in: bool,
    ) -> Result<Value> {
        let nodes = self.nodes(all_nodes, deadline).await?;
        let runs = nodes
            .iter()
            .map(|node| on_node(node, cmd, deadline, opted_in));
        let replies = join_all(runs).await;
        if policy == Some(ResponsePolicy::Special) && cmd.name().eq_ignore_ascii_case("randomkey") {
            return any_key(replies);
        }
        combine(&nodes, policy, replies)
    }

    /// [`ValkeyCluster::request_on`](super::ValkeyCluster::request_on).
    pub(super) async fn on_target(
        &self,
        target: &Target,
        cmd: &Cmd,
        options: &CallOptions,
    ) -> Result<Value> {
        let deadline = self.deadline(options);
        let opted_in = self.opted_in(options);
        let node = match target {
            Target::Node { host, port } => self.topology.node(host, *port),
            Target::Slot(slot) => {
                let place = Place::Slot {
                    slot: *slot,
                    readonly: false,
                };
                self.locate(place, deadline).await?
            }
            Target::RandomPrimary => self.locate(Place::AnyPrimary, deadline).await?,
            Target::AllPrimaries | Target::AllNodes => {
                let policy = crate::command::lookup_cmd(cmd).and_then(|info| info.response_policy);
                let all = *target == Target::AllNodes;
                return self.fan_out(cmd, all, policy, deadline, opted_in).await;
            }
        };
        on_node(&node, cmd, deadline, opted_in).await
    }

    /// The primaries, or every node, of the current view (read first if
    /// none is known).
    pub(super) async fn nodes(
        &self,
        all_nodes: bool,
        deadline: Option<Instant>,
    ) -> Result<Vec<Valkey>> {
        let list = |shared: &Shared| -> Vec<Valkey> {
            let view = shared.topology.view();
            if all_nodes {
                view.all_nodes().cloned().collect()
            } else {
                view.primaries().cloned().collect()
            }
        };
        let nodes = list(self);
        if !nodes.is_empty() {
            return Ok(nodes);
        }
        self.refresh_and_wait(deadline).await;
        let nodes = list(self);
        if nodes.is_empty() {
            return Err(self.last_refresh_error().unwrap_or_else(|| {
                Error::new(ErrorKind::Cluster, "the cluster topology is not known yet")
            }));
        }
        Ok(nodes)
    }
}

/// `cmd` on `node` under the node's own retry (a command aimed at a node
/// is not sent elsewhere).
async fn on_node(
    node: &Valkey,
    cmd: &Cmd,
    deadline: Option<Instant>,
    opted_in: bool,
) -> Result<Value> {
    let mode = match crate::command::connection_use(cmd) {
        crate::command::ConnectionUse::Blocking(timeout) => Mode::Blocking(timeout),
        _ => Mode::Shared,
    };
    match node.attempt_in(cmd, mode, deadline).await {
        Ok(value) => Ok(value),
        Err(err) => {
            let mut single = Single::new(node, cmd, mode);
            node.retry_until_given_up(cmd.name(), &mut single, deadline, opted_in, err, true)
                .await
                .map_err(|gave_up| gave_up.error)
        }
    }
}

/// The replies of a split command, merged: `MGET`'s values in key order,
/// the counts of `DEL`, `UNLINK`, `EXISTS` and `TOUCH` summed, `MSET`'s OK.
/// The first failure fails the whole (some parts may have run).
fn merge_split(
    name: &str,
    keys: usize,
    parts: &[(u16, Cmd, Vec<usize>)],
    replies: Vec<Result<Value>>,
) -> Result<Value> {
    let mut replies_ok = Vec::with_capacity(replies.len());
    for reply in replies {
        replies_ok.push(reply?);
    }
    match name.to_ascii_lowercase().as_str() {
        "mget" => {
            let mut values = vec![Value::Nil; keys];
            for ((_, _, positions), reply) in parts.iter().zip(replies_ok) {
                let Value::Array(items) = reply else {
                    return Err(unexpected(name, &reply));
                };
                if items.len() != positions.len() {
                    return Err(Error::new(
                        ErrorKind::InvalidResponse,
                        format!(
                            "MGET of {} keys got {} values",
                            positions.len(),
                            items.len()
                        ),
                    ));
                }
                for (position, item) in positions.iter().zip(items) {
                    values[*position] = item;
                }
            }
            Ok(Value::Array(values))
        }
        "mset" => Ok(replies_ok
            .into_iter()
            .next()
            .unwrap_or(Value::SimpleString("OK".into()))),
        _ => {
            let mut total: i64 = 0;
            for reply in replies_ok {
                let n = reply.as_int().ok_or_else(|| unexpected(name, &reply))?;
                total = total.saturating_add(n);
            }
            Ok(Value::Int(total))
        }
    }
}

/// `RANDOMKEY` on every primary: a key from one that has any (nil when the
/// cluster is empty).
fn any_key(replies: Vec<Result<Value>>) -> Result<Value> {
    let mut keys = Vec::new();
    for reply in replies {
        let value = reply?;
        if !value.is_nil() {
            keys.push(value);
        }
    }
    if keys.is_empty() {
        return Ok(Value::Nil);
    }
    Ok(keys.swap_remove(fastrand::usize(..keys.len())))
}

/// The replies of a command sent to several nodes, combined by its
/// response policy; without one, or with the "special" one (`INFO`,
/// `MEMORY STATS`, ...), arrays are concatenated and anything else is
/// returned as a map from node address to reply.
fn combine(
    nodes: &[Valkey],
    policy: Option<ResponsePolicy>,
    replies: Vec<Result<Value>>,
) -> Result<Value> {
    match policy {
        Some(ResponsePolicy::OneSucceeded) => {
            let mut first_error = None;
            for reply in replies {
                match reply {
                    Ok(value) => return Ok(value),
                    Err(err) => {
                        first_error.get_or_insert(err);
                    }
                }
            }
            Err(first_error.unwrap_or_else(|| Error::new(ErrorKind::Cluster, "no node to run on")))
        }
        Some(ResponsePolicy::AllSucceeded) => {
            let mut first = None;
            for reply in replies {
                let value = reply?;
                first.get_or_insert(value);
            }
            first.ok_or_else(|| Error::new(ErrorKind::Cluster, "no node to run on"))
        }
        Some(
            policy @ (ResponsePolicy::AggSum
            | ResponsePolicy::AggMin
            | ResponsePolicy::AggMax
            | ResponsePolicy::AggLogicalAnd
            | ResponsePolicy::AggLogicalOr),
        ) => {
            let values = replies.into_iter().collect::<Result<Vec<_>>>()?;
            aggregate(policy, values)
        }
        Some(ResponsePolicy::Special) | None => {
            let values = replies.into_iter().collect::<Result<Vec<_>>>()?;
            if values.iter().all(|v| matches!(v, Value::Array(_))) {
                let mut all = Vec::new();
                for value in values {
                    if let Value::Array(items) = value {
                        all.extend(items);
                    }
                }
                return Ok(Value::Array(all));
            }
            Ok(Value::Map(
                nodes
                    .iter()
                    .zip(values)
                    .map(|(node, value)| (Value::BulkString(node.addr().to_string().into()), value))
                    .collect(),
            ))
        }
    }
}

/// Integers combined by `policy`; arrays of integers element by element
/// (`SCRIPT EXISTS` on every node).
fn aggregate(policy: ResponsePolicy, values: Vec<Value>) -> Result<Value> {
    let combine_two = |a: i64, b: i64| match policy {
        ResponsePolicy::AggSum => a.saturating_add(b),
        ResponsePolicy::AggMin => a.min(b),
        ResponsePolicy::AggMax => a.max(b),
        ResponsePolicy::AggLogicalAnd => i64::from(a != 0 && b != 0),
        _ => i64::from(a != 0 || b != 0),
    };
    let mut values = values.into_iter();
    let Some(mut acc) = values.next() else {
        return Err(Error::new(ErrorKind::Cluster, "no node to run on"));
    };
    for value in values {
        acc = match (acc, value) {
            (Value::Int(a), Value::Int(b)) => Value::Int(combine_two(a, b)),
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                let mut items = Vec::with_capacity(a.len());
                for (x, y) in a.into_iter().zip(b) {
                    match (x.as_int(), y.as_int()) {
                        (Some(x), Some(y)) => items.push(Value::Int(combine_two(x, y))),
                        _ => return Err(unexpected("an aggregated reply", &x)),
                    }
                }
                Value::Array(items)
            }
            (acc, _) => return Err(unexpected("an aggregated reply", &acc)),
        };
    }
    Ok(acc)
}

fn unexpected(what: &str, reply: &Value) -> Error {
    let kind = match reply {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::Array(_) | Value::Set(_) | Value::Push(_) => "an array",
        Value::Map(_) => "a map",
        Value::Error(_) => "an error",
        _ => "a string or scalar",
    };
    Error::new(
        ErrorKind::InvalidResponse,
        format!("unexpected reply to {what}: {kind}"),
    )
}
