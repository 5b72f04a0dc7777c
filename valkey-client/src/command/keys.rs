//! Key extraction: applies a command's key specs to the arguments of a call,
//! the way the server does (`getKeysUsingKeySpecs`, skipping invalid specs
//! rather than failing). Never panics, whatever the arguments.

use super::{BeginSearch, FindKeys, KeySpec, KeySpecFlags, lookup_cmd};
use crate::Cmd;
use crate::cmd::ArgIter;

/// The argument indices of the keys of `cmd` (0 is the command name), in
/// key-spec order, as `COMMAND GETKEYS` would give them. Empty for unknown
/// commands and keyless ones; specs the server marks unknown (`SORT ... STORE`)
/// give nothing, and `not_key` arguments (shard channels) are left out.
pub fn key_indices(cmd: &Cmd) -> KeyIter<'_> {
    key_iter(cmd, false)
}

fn key_iter(cmd: &Cmd, include_not_keys: bool) -> KeyIter<'_> {
    let info = lookup_cmd(cmd);
    KeyIter {
        cmd,
        include_not_keys,
        migrate: info.is_some_and(|info| info.name == "migrate"),
        argc: cmd.arg_count() as i64,
        specs: info.map_or(&[], |info| info.key_specs),
        next: 0,
        last: -1,
        step: 1,
    }
}

/// The keys of `cmd`, as in [`key_indices`].
pub fn keys(cmd: &Cmd) -> impl Iterator<Item = &[u8]> {
    let mut args = cmd.arg_iter();
    let mut pos = 0;
    key_indices(cmd).filter_map(move |index| {
        // Indices mostly ascend: walk on, and restart only when one goes back.
        if index < pos {
            args = cmd.arg_iter();
            pos = 0;
        }
        let arg = args.nth(index - pos);
        pos = index + 1;
        arg
    })
}

/// The first key of `cmd`, the one a cluster routes it by. Unlike [`keys`],
/// this counts `not_key` arguments that route like keys: the shard channel
/// of `SPUBLISH`/`SSUBSCRIBE`, the cursor of `CLUSTERSCAN`.
pub fn first_key(cmd: &Cmd) -> Option<&[u8]> {
    let index = key_iter(cmd, true).next()?;
    cmd.arg_at(index)
}

/// Iterator over key indices, see [`key_indices`].
#[derive(Debug, Clone)]
pub struct KeyIter<'a> {
    cmd: &'a Cmd,
    /// Whether `not_key` specs count (for routing).
    include_not_keys: bool,
    /// `MIGRATE host port "" db timeout KEYS k1 k2`: the empty key argument
    /// is a placeholder, which the server's own key finder drops too.
    migrate: bool,
    argc: i64,
    /// The specs not yet applied.
    specs: &'static [KeySpec],
    /// The current spec's next index, its last one and its step.
    next: i64,
    last: i64,
    step: i64,
}

impl Iterator for KeyIter<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            if self.next <= self.last && self.next < self.argc {
                let index = self.next;
                self.next += self.step;
                return usize::try_from(index).ok();
            }
            let (spec, rest) = self.specs.split_first()?;
            self.specs = rest;
            if let Some((first, last, step)) = self.resolve(spec) {
                (self.next, self.last, self.step) = (first, last, step);
            }
        }
    }
}

impl KeyIter<'_> {
    /// The first index, last index and step of one spec on these arguments,
    /// or `None` when it gives no keys (unknown, keyword absent, bad count,
    /// out of range).
    fn resolve(&self, spec: &KeySpec) -> Option<(i64, i64, i64)> {
        if spec.flags.contains(KeySpecFlags::NOT_KEY) && !self.include_not_keys {
            return None;
        }
        let argc = self.argc;
        let mut first = match spec.begin_search {
            BeginSearch::Index(i) if self.migrate && self.arg_is_empty(i) => return None,
            BeginSearch::Index(i) => i64::from(i),
            BeginSearch::Keyword { keyword, startfrom } => {
                self.find_keyword(keyword.as_bytes(), i64::from(startfrom))? + 1
            }
            BeginSearch::Unknown => return None,
        };
        let (last, step) = match spec.find_keys {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                let lastkey = i64::from(lastkey);
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit <= 1 {
                    argc + lastkey
                } else {
                    first + (argc - first) / i64::from(limit) + lastkey
                };
                (last, i64::from(step))
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                let count = self
                    .cmd
                    .arg_at(usize::try_from(first + i64::from(keynumidx)).ok()?)?;
                let count: i64 = std::str::from_utf8(count).ok()?.parse().ok()?;
                if count < 0 {
                    return None;
                }
                first += i64::from(firstkey);
                let step = i64::from(step.max(1));
                // A huge count saturates, then fails the range check below.
                (first.saturating_add((count - 1).saturating_mul(step)), step)
            }
            FindKeys::Unknown => return None,
        };
        if first < 1 || first >= argc || last < first || last >= argc {
            return None;
        }
        Some((first, last, step.max(1)))
    }

    fn arg_is_empty(&self, index: i32) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.cmd.arg_at(i))
            .is_some_and(<[u8]>::is_empty)
    }

    /// The index of `keyword` (any case): the first one from `startfrom` on,
    /// or, for a negative `startfrom`, the last one at or before `argc + startfrom`.
    fn find_keyword(&self, keyword: &[u8], startfrom: i64) -> Option<i64> {
        let args = || positions(self.cmd.arg_iter()).skip(1);
        let is_keyword = |(_, arg): &(i64, &[u8])| arg.eq_ignore_ascii_case(keyword);
        if startfrom > 0 {
            args()
                .skip_while(|(i, _)| *i < startfrom)
                .find(is_keyword)
                .map(|(i, _)| i)
        } else {
            let end = self.argc + startfrom;
            args()
                .take_while(|(i, _)| *i <= end)
                .filter(is_keyword)
                .last()
                .map(|(i, _)| i)
        }
    }
}

/// The arguments with their indices as `i64`.
fn positions(args: ArgIter<'_>) -> impl Iterator<Item = (i64, &[u8])> {
    (0i64..).zip(args)
}
