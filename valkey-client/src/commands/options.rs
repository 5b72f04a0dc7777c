//! [`OptionArgs`]: the optional arguments of one command, kept in their
//! documented order whatever order the setters ran in.

use crate::cmd::{ArgWriter, Cmd, ToArgs};

/// The arguments one option writes, e.g. `EX 10`.
#[derive(Clone, Default)]
pub(crate) struct ArgList {
    args: Vec<Vec<u8>>,
}

impl ArgList {
    /// Adds the arguments of `value`.
    pub(crate) fn push_arg(&mut self, value: impl ToArgs) {
        value.write_args(self);
    }
}

impl ArgWriter for ArgList {
    fn write_arg(&mut self, bytes: &[u8]) {
        self.args.push(bytes.to_vec());
    }
}

/// Each option in its slot: slots are numbered in the order the command's
/// syntax lists its arguments, and written in that order. A part of an
/// optional block (`[count [WITHVALUES]]`) is anchored to the block's slot
/// and written only with it: alone, the server would misread it.
#[derive(Clone, Default)]
pub(crate) struct OptionArgs {
    /// Sorted by slot.
    slots: Vec<Slot>,
}

#[derive(Clone)]
struct Slot {
    index: u16,
    anchor: Option<u16>,
    args: ArgList,
}

impl OptionArgs {
    /// Sets `slot` to what `fill` writes, replacing what it held.
    pub(crate) fn set(&mut self, slot: u16, fill: impl FnOnce(&mut ArgList)) {
        self.put(slot, None, fill);
    }

    /// [`OptionArgs::set`] for a part of an optional block whose own slot
    /// is `anchor`.
    pub(crate) fn set_in(&mut self, anchor: u16, slot: u16, fill: impl FnOnce(&mut ArgList)) {
        self.put(slot, Some(anchor), fill);
    }

    fn put(&mut self, index: u16, anchor: Option<u16>, fill: impl FnOnce(&mut ArgList)) {
        let mut args = ArgList::default();
        fill(&mut args);
        let slot = Slot {
            index,
            anchor,
            args,
        };
        match self.slots.binary_search_by_key(&index, |s| s.index) {
            Ok(i) => self.slots[i] = slot,
            Err(i) => self.slots.insert(i, slot),
        }
    }

    /// Adds what `fill` writes to `slot` (a repeated option: `GET p GET q`).
    pub(crate) fn push(&mut self, slot: u16, fill: impl FnOnce(&mut ArgList)) {
        match self.slots.binary_search_by_key(&slot, |s| s.index) {
            Ok(i) => fill(&mut self.slots[i].args),
            Err(_) => self.put(slot, None, fill),
        }
    }

    /// Empties the slots `lo..hi`: the alternatives of a one-of exclude
    /// each other.
    pub(crate) fn clear(&mut self, lo: u16, hi: u16) {
        self.slots.retain(|s| !(lo..hi).contains(&s.index));
    }

    /// Writes the slots `lo..hi`, in order.
    pub(crate) fn write_to(&self, cmd: &mut Cmd, lo: u16, hi: u16) {
        let present = |index: u16| self.slots.iter().any(|s| s.index == index);
        for slot in self.slots.iter().filter(|s| (lo..hi).contains(&s.index)) {
            if slot.anchor.is_some_and(|a| !present(a)) {
                continue;
            }
            for arg in &slot.args.args {
                cmd.write_arg(arg);
            }
        }
    }
}

/// Only how many arguments: option values may be secrets (`MIGRATE ...
/// AUTH password`) and Debug output ends up in logs.
impl std::fmt::Debug for OptionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let args: usize = self.slots.iter().map(|s| s.args.args.len()).sum();
        write!(f, "{args} arguments")
    }
}

/// How many arguments `value` writes, for the counts the commands take
/// before a list (`numkeys`, `numfields`).
pub(crate) fn count_args(value: &impl ToArgs) -> usize {
    struct Counter(usize);
    impl ArgWriter for Counter {
        fn write_arg(&mut self, _: &[u8]) {
            self.0 += 1;
        }
    }
    let mut counter = Counter(0);
    value.write_args(&mut counter);
    counter.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(options: &OptionArgs) -> Vec<Vec<u8>> {
        let mut cmd = Cmd::new("X");
        options.write_to(&mut cmd, 0, u16::MAX);
        cmd.arg_iter().skip(1).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn slots_are_written_in_order_and_replaced() {
        let mut o = OptionArgs::default();
        o.set(4, |a| a.push_arg(("EX", 10)));
        o.set(1, |a| a.push_arg("NX"));
        o.set(4, |a| a.push_arg(("PX", 5)));
        assert_eq!(written(&o), [&b"NX"[..], b"PX", b"5"]);
        o.clear(0, 2);
        assert_eq!(written(&o), [&b"PX"[..], b"5"]);
        o.push(7, |a| a.push_arg(("GET", "a")));
        o.push(7, |a| a.push_arg(("GET", "b")));
        assert_eq!(written(&o), [&b"PX"[..], b"5", b"GET", b"a", b"GET", b"b"]);
        assert_eq!(format!("{o:?}"), "6 arguments");
    }

    #[test]
    fn a_part_of_a_block_waits_for_the_block() {
        let mut o = OptionArgs::default();
        o.set_in(2, 3, |a| a.push_arg("WITHVALUES"));
        assert!(
            written(&o).is_empty(),
            "WITHVALUES alone would be read as the count"
        );
        o.set(2, |a| a.push_arg(5));
        assert_eq!(written(&o), [&b"5"[..], b"WITHVALUES"]);
    }

    #[test]
    fn counts_arguments() {
        assert_eq!(count_args(&["a", "b", "c"]), 3);
        assert_eq!(count_args(&[("f", 1), ("g", 2)]), 4);
        assert_eq!(count_args(&Vec::<String>::new()), 0);
    }
}
