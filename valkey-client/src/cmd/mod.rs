//! [`Cmd`]: a command encoded once into its wire form, and the traits that
//! turn values into its arguments: [`ToArg`] (exactly one argument) and
//! [`ToArgs`] (zero or more).

use bytes::{BufMut, Bytes, BytesMut};

use crate::arg_buf::ArgBuf;
use crate::resp::{Header, put_header};

mod to_arg;
mod to_args;

pub use to_arg::ToArg;
pub use to_args::{ArgWriter, ToArgs};

/// A command: a name and its arguments, encoded as RESP bulk strings as they
/// are added, so sending it is one copy into the output buffer.
///
/// ```
/// use valkey_client::Cmd;
/// let cmd = Cmd::new("SET").arg("key").arg(42).arg(&b"raw bytes"[..]);
/// assert_eq!(cmd.arg_count(), 4);
/// assert_eq!(cmd.name(), "SET");
/// // A value may stand for several arguments (see `ToArgs`): a list, a
/// // tuple, a map, or an `Option` that adds nothing when `None`.
/// let cmd = Cmd::new("HSET").arg("h").arg([("f1", 1), ("f2", 2)]).arg(None::<&str>);
/// assert_eq!(cmd.arg_count(), 6);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    /// `$len\r\narg\r\n` for every argument, in order; small commands are
    /// built without touching the heap.
    args: ArgBuf,
    count: u32,
    /// End of the name inside `args`, to report it in errors and logs.
    name_end: u32,
}

impl Cmd {
    /// A command with its name (e.g. `"GET"`, or `"CLIENT"` followed by
    /// `.arg("SETNAME")`).
    pub fn new(name: &str) -> Cmd {
        let mut cmd = Cmd {
            args: ArgBuf::default(),
            count: 0,
            name_end: 0,
        };
        cmd.push(name.as_bytes());
        cmd.name_end = cmd.args.len() as u32;
        cmd
    }

    /// Adds the arguments `arg` stands for: one for a string, bytes or a
    /// number, several for a list, tuple, set or map, none for `None` (see
    /// [`ToArgs`]).
    #[inline]
    pub fn arg(mut self, arg: impl ToArgs) -> Cmd {
        arg.write_args(&mut self);
        self
    }

    /// Adds the arguments `arg` stands for, in place.
    #[inline]
    pub fn push_arg(&mut self, arg: impl ToArgs) -> &mut Cmd {
        arg.write_args(self);
        self
    }

    /// Adds every argument of an iterator, one argument per item.
    #[inline]
    pub fn args<A: ToArg>(mut self, args: impl IntoIterator<Item = A>) -> Cmd {
        for a in args {
            a.with_bytes(|b| self.push(b));
        }
        self
    }

    fn push(&mut self, bytes: &[u8]) {
        let header = Header::new(b'$', bytes.len());
        self.args.extend(&[header.as_bytes(), bytes, b"\r\n"]);
        self.count = self.count.saturating_add(1);
    }

    /// The number of arguments, the name included.
    pub fn arg_count(&self) -> usize {
        self.count as usize
    }

    /// The command name as given.
    pub fn name(&self) -> &str {
        std::str::from_utf8(self.name_bytes()).unwrap_or("?")
    }

    /// The command name as raw bytes: no length parsing and no UTF-8 check,
    /// for the per-command checks of the hot path.
    pub(crate) fn name_bytes(&self) -> &[u8] {
        let encoded = &self.args.as_slice()[..self.name_end as usize];
        // `$<len>\r\n<name>\r\n`: the name sits between the first CRLF and the
        // last; for a name under 10 bytes (nearly all) the first CRLF is at 2.
        let start = if encoded.get(2) == Some(&b'\r') {
            4
        } else {
            encoded
                .iter()
                .position(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
        };
        let end = encoded.len().saturating_sub(2).max(start);
        encoded.get(start..end).unwrap_or_default()
    }

    /// The arguments, the name first, as raw bytes.
    pub fn arg_iter(&self) -> ArgIter<'_> {
        ArgIter {
            rest: self.args.as_slice(),
        }
    }

    /// The argument at `index` (0 is the name).
    pub fn arg_at(&self, index: usize) -> Option<&[u8]> {
        self.arg_iter().nth(index)
    }

    /// Appends the full RESP encoding (`*N\r\n` then the arguments) to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        // A length line is at most 23 bytes.
        out.reserve(23 + self.args.len());
        put_header(out, b'*', self.count as usize);
        out.put_slice(self.args.as_slice());
    }

    /// The full RESP encoding as one buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }
}

/// Iterator over the arguments of a [`Cmd`], see [`Cmd::arg_iter`].
#[derive(Debug, Clone)]
pub struct ArgIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ArgIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // Each entry is `$<len>\r\n<bytes>\r\n`, written by `Cmd::push`.
        let header_end = self.rest.iter().position(|&b| b == b'\n')?;
        let len: usize = std::str::from_utf8(self.rest.get(1..header_end.saturating_sub(1))?)
            .ok()?
            .parse()
            .ok()?;
        let start = header_end + 1;
        let arg = self.rest.get(start..start + len)?;
        self.rest = self.rest.get(start + len + 2..).unwrap_or(&[]);
        Some(arg)
    }
}

impl ArgWriter for Cmd {
    #[inline]
    fn write_arg(&mut self, bytes: &[u8]) {
        self.push(bytes);
    }
}

impl std::fmt::Debug for Cmd {
    // Only the name: arguments may hold secrets (AUTH, HELLO ... AUTH) or
    // large values, and Debug output ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cmd")
            .field("name", &self.name())
            .field("args", &self.count)
            .finish()
    }
}

#[cfg(test)]
mod args_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_array_of_bulk_strings() {
        let cmd = Cmd::new("SET")
            .arg("k")
            .arg(-12i64)
            .arg(1.5f64)
            .arg(b"\r\n");
        assert_eq!(
            &cmd.to_bytes()[..],
            &b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n-12\r\n$3\r\n1.5\r\n$2\r\n\r\n\r\n"[..]
        );
        assert_eq!(cmd.name(), "SET");
        assert_eq!(cmd.arg_count(), 5);
    }

    #[test]
    fn name_of_any_length() {
        for name in ["", "X", "GET", "BRPOPLPUSH", &"n".repeat(100), "\u{e9}"] {
            let cmd = Cmd::new(name).arg("k");
            assert_eq!(cmd.name_bytes(), name.as_bytes());
            assert_eq!(cmd.name(), name);
        }
    }

    #[test]
    fn arguments_iterate_back() {
        let cmd = Cmd::new("HSET").arg("h").arg(&b"a\r\nb"[..]).arg(7);
        let args: Vec<&[u8]> = cmd.arg_iter().collect();
        assert_eq!(args, [&b"HSET"[..], b"h", b"a\r\nb", b"7"]);
        assert_eq!(cmd.arg_at(2), Some(&b"a\r\nb"[..]));
        assert_eq!(cmd.arg_at(4), None);
    }

    #[test]
    fn small_commands_stay_inline_and_cheap_to_move() {
        assert_eq!(std::mem::size_of::<Cmd>(), 120);
        let big = Cmd::new("SET").arg("k").arg(vec![b'x'; 1000]);
        assert_eq!(big.arg_at(2).map(<[u8]>::len), Some(1000));
    }

    #[test]
    fn debug_hides_arguments() {
        let cmd = Cmd::new("AUTH").arg("user").arg("hunter2");
        let shown = format!("{cmd:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("AUTH"));
    }

    #[test]
    fn infinities_use_valkey_spelling() {
        let cmd = Cmd::new("ZADD").arg(f64::INFINITY).arg(f64::NEG_INFINITY);
        assert!(cmd.to_bytes().ends_with(b"$3\r\ninf\r\n$4\r\n-inf\r\n"));
    }
}
