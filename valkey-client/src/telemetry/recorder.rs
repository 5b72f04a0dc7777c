//! The `metrics` feature: what a call, a retry, a reconnect and a
//! redirection add to the facade's recorder. Names in [`crate::metrics`].
//!
//! The hot path builds no key: a known command's keys are made once per
//! command of the table, and found again through a small per-thread cache
//! of recent commands, so counting a call is the recorder's own work, with
//! no allocation and no table search.

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Instant;

use ::metrics::{Counter, Histogram, Key, Label, Level, Metadata, SharedString, with_recorder};

use crate::command::{self, CommandInfo};
use crate::error::Error;
use crate::metrics::{CALL_DURATION, CALLS, ERRORS, IN_FLIGHT, RECONNECTS, REDIRECTIONS, RETRIES};

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one command's metrics, made once.
struct CommandKeys {
    name: &'static str,
    calls: Key,
    duration: Key,
    retries: Key,
}

impl CommandKeys {
    fn new(name: &'static str) -> CommandKeys {
        let labels = || vec![Label::from_static_parts("command", name)];
        CommandKeys {
            name,
            calls: Key::from_parts(CALLS, labels()),
            duration: Key::from_parts(CALL_DURATION, labels()),
            retries: Key::from_parts(RETRIES, labels()),
        }
    }
}

/// The keys of every command of the table, then `pipeline` and `multi`,
/// made on first use.
fn known_keys() -> &'static [CommandKeys] {
    static KEYS: OnceLock<Vec<CommandKeys>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let table = command::all().iter().map(|info| info.name);
        table
            .chain(["pipeline", "multi"])
            .map(CommandKeys::new)
            .collect()
    })
}

thread_local! {
    /// The commands this thread counted last, by a hash of their names:
    /// the table's binary search costs more than the rest of the counting.
    static RECENT: Cell<[Option<&'static CommandKeys>; 16]> = const { Cell::new([None; 16]) };
}

/// The keys of a command the table knows, of `pipeline` or `multi`.
fn static_keys(operation: &[u8]) -> Option<&'static CommandKeys> {
    let keys = known_keys();
    let table_len = command::all().len();
    match operation {
        b"PIPELINE" => return keys.get(table_len),
        b"MULTI" => return keys.get(table_len + 1),
        _ => {}
    }
    let slot = recent_slot(operation);
    let recent = RECENT.with(Cell::get);
    if let Some(hit) = recent[slot].filter(|k| k.name.as_bytes().eq_ignore_ascii_case(operation)) {
        return Some(hit);
    }
    let found = keys.get(index_in_table(command::lookup(operation)?)?)?;
    let mut recent = recent;
    recent[slot] = Some(found);
    RECENT.with(|r| r.set(recent));
    Some(found)
}

fn recent_slot(name: &[u8]) -> usize {
    let first = name.first().map_or(0, |b| b.to_ascii_lowercase());
    let last = name.last().map_or(0, |b| b.to_ascii_lowercase());
    (name.len() * 7 + usize::from(first) * 3 + usize::from(last)) % 16
}

/// Where `info` sits in the table (it is one of its entries).
fn index_in_table(info: &'static CommandInfo) -> Option<usize> {
    let table = command::all();
    let offset = (info as *const CommandInfo as usize).checked_sub(table.as_ptr() as usize)?;
    Some(offset / std::mem::size_of::<CommandInfo>())
}

/// The keys of a call: static when the command is known, made for this
/// call for one the table does not know (a module's).
enum CallKeys {
    Static(&'static CommandKeys),
    Owned(SharedString),
}

impl CallKeys {
    fn of(operation: &[u8]) -> CallKeys {
        match static_keys(operation) {
            Some(keys) => CallKeys::Static(keys),
            None => CallKeys::Owned(SharedString::from_owned(
                String::from_utf8_lossy(operation).to_lowercase(),
            )),
        }
    }

    fn with_key<T>(
        &self,
        pick: fn(&CommandKeys) -> &Key,
        name: &'static str,
        f: impl FnOnce(&Key) -> T,
    ) -> T {
        match self {
            CallKeys::Static(keys) => f(pick(keys)),
            CallKeys::Owned(command) => f(&Key::from_parts(
                name,
                vec![Label::new("command", command.clone())],
            )),
        }
    }

    fn command(&self) -> SharedString {
        match self {
            CallKeys::Static(keys) => SharedString::const_str(keys.name),
            CallKeys::Owned(command) => command.clone(),
        }
    }
}

fn counter(key: &Key) -> Counter {
    with_recorder(|recorder| recorder.register_counter(key, &METADATA))
}

fn histogram(key: &Key) -> Histogram {
    with_recorder(|recorder| recorder.register_histogram(key, &METADATA))
}

fn in_flight(delta: f64) {
    const KEY: Key = Key::from_static_name(IN_FLIGHT);
    let gauge = with_recorder(|recorder| recorder.register_gauge(&KEY, &METADATA));
    if delta > 0.0 {
        gauge.increment(delta);
    } else {
        gauge.decrement(-delta);
    }
}

/// One call from start to end. Dropped unfinished (the caller gave up on
/// the future), it still leaves the in-flight count.
pub(crate) struct CallMeter {
    keys: CallKeys,
    started: Instant,
}

impl CallMeter {
    pub(crate) fn start(operation: &[u8]) -> CallMeter {
        let keys = CallKeys::of(operation);
        keys.with_key(|k| &k.calls, CALLS, |key| counter(key).increment(1));
        in_flight(1.0);
        CallMeter {
            keys,
            started: Instant::now(),
        }
    }

    pub(crate) fn finish(&self, error: Option<&Error>) {
        let seconds = self.started.elapsed().as_secs_f64();
        (self.keys).with_key(
            |k| &k.duration,
            CALL_DURATION,
            |key| histogram(key).record(seconds),
        );
        if let Some(err) = error {
            let labels = vec![
                Label::new("command", self.keys.command()),
                Label::from_static_parts("kind", err.kind().name()),
            ];
            counter(&Key::from_parts(ERRORS, labels)).increment(1);
        }
    }
}

impl Drop for CallMeter {
    fn drop(&mut self) {
        in_flight(-1.0);
    }
}

pub(crate) fn retry(command: &str) {
    let keys = CallKeys::of(command.as_bytes());
    keys.with_key(|k| &k.retries, RETRIES, |key| counter(key).increment(1));
}

pub(crate) fn reconnect(addr: &str) {
    let labels = vec![Label::new("server", addr.to_string())];
    counter(&Key::from_parts(RECONNECTS, labels)).increment(1);
}

pub(crate) fn redirection(ask: bool) {
    static MOVED: [Label; 1] = [Label::from_static_parts("type", "moved")];
    static ASK: [Label; 1] = [Label::from_static_parts("type", "ask")];
    let labels: &'static [Label] = if ask { &ASK } else { &MOVED };
    counter(&Key::from_static_parts(REDIRECTIONS, labels)).increment(1);
}
