//! [`Pipeline`]: several commands encoded straight into one buffer, to be
//! sent in one write.

use bytes::{BufMut, BytesMut};

use crate::cmd::{ArgWriter, Cmd, ToArg, ToArgs};
use crate::command::{self, ConnectionUse};
use crate::error::{Error, ErrorKind, Result};
use crate::resp::{self, Limits, Value, put_header};

/// Where the commands of a run of pipeline bytes start, relative to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Starts<'a> {
    base: usize,
    starts: &'a [usize],
}

impl Starts<'_> {
    /// How many commands.
    pub(crate) fn len(&self) -> usize {
        self.starts.len()
    }

    /// Each command's first byte, relative to the run.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.starts.iter().map(|s| s - self.base)
    }
}

/// Commands encoded one after the other into a single buffer, with no
/// `Cmd` per command: the cheapest way to send many commands at once.
///
/// ```
/// use valkey_client::{Cmd, Pipeline};
/// let mut pipe = Pipeline::new();
/// pipe.cmd("SET").arg("a").arg(1);
/// pipe.cmd("INCR").arg("a");
/// pipe.add(&Cmd::new("GET").arg("a"));
/// assert_eq!(pipe.len(), 3);
/// ```
#[derive(Clone, Default)]
pub struct Pipeline {
    buf: BytesMut,
    /// Where each command starts in `buf`.
    starts: Vec<usize>,
    /// The command being built: where its `*N\r\n` header starts and how
    /// many arguments it has so far.
    open: Option<(usize, usize)>,
    /// An argument was added before any command.
    stray_argument: bool,
    /// Some command's name may be a blocking or connection-state one: the
    /// client checks the commands before sending (a cheap filter on names
    /// keeps the common pipeline from being decoded).
    needs_use_check: bool,
}

/// What [`Pipeline::shared_use`] found.
#[derive(Debug, Default)]
pub(crate) struct PipelineUse {
    /// The pipeline is exactly one `MULTI ... EXEC` transaction.
    pub(crate) transaction: bool,
    /// The first blocking command outside a transaction, if any.
    pub(crate) blocking: Option<String>,
}

impl PipelineUse {
    /// For a client: a blocking command cannot be pipelined on the shared
    /// connection (it would hold up every caller); `request` runs it on a
    /// dedicated one.
    pub(crate) fn refuse_blocking(&self) -> Result<()> {
        match &self.blocking {
            None => Ok(()),
            Some(name) => Err(Error::new(
                ErrorKind::StatefulCommand,
                format!(
                    "{name} blocks its connection, so it cannot run in a pipeline; send it \
                     alone with the client's request method, which runs it on a dedicated \
                     connection"
                ),
            )),
        }
    }
}

/// Shows the command names and counts, never argument values (they may
/// hold passwords or user data).
impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = (0..self.len())
            .map(|i| match self.command(i) {
                Some(cmd) => cmd.name().to_string(),
                None => "?".to_string(),
            })
            .collect();
        f.debug_struct("Pipeline")
            .field("len", &self.len())
            .field("commands", &names)
            .field("bytes", &self.buf.len())
            .finish()
    }
}

/// Appends to the command being built; without one, the pipeline remembers
/// the misuse and refuses to be sent.
impl ArgWriter for Pipeline {
    #[inline]
    fn write_arg(&mut self, bytes: &[u8]) {
        let Some((_, argc)) = self.open.as_mut() else {
            self.stray_argument = true;
            return;
        };
        *argc += 1;
        let buf = &mut self.buf;
        // A length line is at most 23 bytes.
        buf.reserve(23 + bytes.len() + 2);
        put_header(buf, b'$', bytes.len());
        buf.put_slice(bytes);
        buf.put_slice(b"\r\n");
    }
}

/// The header written for a command before its argument count is known:
/// one digit, widened when the count turns out larger.
const PLACEHOLDER: &[u8] = b"*0\r\n";

impl Pipeline {
    /// An empty pipeline.
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// An empty pipeline with room for `bytes` of encoded commands (and
    /// for as many commands as that holds of 32-byte ones).
    pub fn with_capacity(bytes: usize) -> Pipeline {
        Pipeline {
            buf: BytesMut::with_capacity(bytes),
            starts: Vec::with_capacity(bytes / 32),
            ..Pipeline::default()
        }
    }

    /// Starts a new command; add its arguments with [`Pipeline::arg`].
    pub fn cmd(&mut self, name: &str) -> &mut Pipeline {
        self.close_command();
        self.needs_use_check |= command::may_not_be_shared(name.as_bytes());
        self.open = Some((self.buf.len(), 0));
        self.starts.push(self.buf.len());
        self.buf.put_slice(PLACEHOLDER);
        self.arg(name)
    }

    /// Adds the arguments `arg` stands for (see [`ToArgs`]) to the command
    /// being built.
    #[inline]
    pub fn arg(&mut self, arg: impl ToArgs) -> &mut Pipeline {
        if self.open.is_none() {
            // Even an argument that writes nothing (`None`) is a misuse here.
            self.stray_argument = true;
            return self;
        }
        arg.write_args(self);
        self
    }

    /// Adds every argument of an iterator to the command being built.
    pub fn args<A: ToArg>(&mut self, args: impl IntoIterator<Item = A>) -> &mut Pipeline {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Adds a command built beforehand.
    pub fn add(&mut self, cmd: &Cmd) -> &mut Pipeline {
        self.close_command();
        self.needs_use_check |= command::may_not_be_shared(cmd.name_bytes());
        self.starts.push(self.buf.len());
        cmd.write_to(&mut self.buf);
        self
    }

    /// The number of commands.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there is no command.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Removes every command, keeping the buffers for reuse.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.starts.clear();
        self.open = None;
        self.stray_argument = false;
        self.needs_use_check = false;
    }

    /// What the pipeline is called in a call's span and metrics: `MULTI`
    /// when it is one `MULTI ... EXEC` transaction, else `PIPELINE`.
    pub(crate) fn operation_name(&mut self) -> &'static str {
        if !self.needs_use_check {
            return "PIPELINE";
        }
        // Closes the last command, so it decodes.
        self.close_command();
        if self.is_one_transaction() {
            "MULTI"
        } else {
            "PIPELINE"
        }
    }

    /// Whether the commands are exactly one `MULTI ... EXEC` (the last
    /// command closed).
    fn is_one_transaction(&self) -> bool {
        let n = self.len();
        let is = |i: usize, name: &str| {
            self.command(i)
                .is_some_and(|c| c.name().eq_ignore_ascii_case(name))
        };
        n >= 2 && is(0, "MULTI") && is(n - 1, "EXEC")
    }

    /// How the pipeline may use a shared connection (see
    /// [`command::connection_use`]): an error for a connection-state command,
    /// unless the pipeline is exactly one `MULTI ... EXEC` transaction, which
    /// is atomic on the wire (blocking commands inside it do not block).
    /// Commands are decoded back only when a cheap filter on their names,
    /// applied as they were added, says one may be special.
    pub(crate) fn shared_use(&mut self) -> Result<PipelineUse> {
        let mut usage = PipelineUse::default();
        if !self.needs_use_check {
            return Ok(usage);
        }
        // Closes the last command, so it decodes.
        self.encoded()?;
        let n = self.len();
        usage.transaction = self.is_one_transaction();
        for i in 0..n {
            let Some(cmd) = self.command(i) else {
                continue;
            };
            match command::connection_use(&cmd) {
                ConnectionUse::Shared => {}
                ConnectionUse::Blocking(_) if usage.transaction => {}
                ConnectionUse::Blocking(_) => {
                    usage
                        .blocking
                        .get_or_insert_with(|| cmd.name().to_ascii_uppercase());
                }
                ConnectionUse::State(_) if usage.transaction && (i == 0 || i == n - 1) => {}
                ConnectionUse::State(state) => return Err(state.refusal()),
            }
        }
        Ok(usage)
    }

    /// The encoded commands, ready to write.
    pub(crate) fn encoded(&mut self) -> Result<&[u8]> {
        if self.stray_argument {
            return Err(Error::new(
                ErrorKind::Data,
                "pipeline: an argument was added before any command",
            ));
        }
        self.close_command();
        Ok(&self.buf)
    }

    /// The encoded commands from the `from`-th on, with where each starts in
    /// the returned bytes.
    pub(crate) fn encoded_from(&mut self, from: usize) -> Result<(&[u8], Starts<'_>)> {
        self.encoded()?;
        let base = self.starts.get(from).copied().unwrap_or(self.buf.len());
        let starts = Starts {
            base,
            starts: self.starts.get(from..).unwrap_or_default(),
        };
        Ok((&self.buf[base..], starts))
    }

    /// The `index`-th command, decoded back into a [`Cmd`]: for judging
    /// whether it is safe to repeat after a failure (cold path).
    pub(crate) fn command(&self, index: usize) -> Option<Cmd> {
        let start = *self.starts.get(index)?;
        let end = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.buf.len());
        let mut bytes = BytesMut::from(self.buf.get(start..end)?);
        let Ok(Some(Value::Array(args))) = resp::decode(&mut bytes, &Limits::default()) else {
            return None;
        };
        let mut args = args.into_iter();
        let name = match args.next()? {
            Value::BulkString(name) => String::from_utf8_lossy(&name).into_owned(),
            _ => return None,
        };
        let mut cmd = Cmd::new(&name);
        for arg in args {
            if let Value::BulkString(arg) = arg {
                cmd = cmd.arg(&arg[..]);
            }
        }
        Some(cmd)
    }

    /// Writes the real argument count into the open command's header.
    fn close_command(&mut self) {
        let Some((at, argc)) = self.open.take() else {
            return;
        };
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(argc).as_bytes();
        if digits.len() > 1 {
            // Widen the one-digit placeholder: shift the arguments right.
            let extra = digits.len() - 1;
            let old_len = self.buf.len();
            self.buf.resize(old_len + extra, 0);
            self.buf.copy_within(at + 2..old_len, at + 2 + extra);
        }
        self.buf[at + 1..at + 1 + digits.len()].copy_from_slice(digits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_separate_commands() {
        let mut pipe = Pipeline::new();
        pipe.cmd("SET").arg("k").arg(-3);
        let many: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
        pipe.cmd("RPUSH").arg("list").args(&many);
        pipe.add(&Cmd::new("PING"));
        pipe.cmd("GET").arg("k");
        let mut expected = BytesMut::new();
        Cmd::new("SET").arg("k").arg(-3).write_to(&mut expected);
        Cmd::new("RPUSH")
            .arg("list")
            .args(&many)
            .write_to(&mut expected);
        Cmd::new("PING").write_to(&mut expected);
        Cmd::new("GET").arg("k").write_to(&mut expected);
        assert_eq!(pipe.encoded().unwrap(), &expected[..]);
        assert_eq!(pipe.len(), 4);
        // Each command can be found again, and the tail from any command on.
        assert_eq!(pipe.command(1).unwrap().arg_iter().count(), 14);
        assert_eq!(pipe.command(2).unwrap().name(), "PING");
        assert!(pipe.command(4).is_none());
        let (tail, starts) = pipe.encoded_from(2).unwrap();
        let mut rest = BytesMut::new();
        Cmd::new("PING").write_to(&mut rest);
        let ping_len = rest.len();
        Cmd::new("GET").arg("k").write_to(&mut rest);
        assert_eq!(tail, &rest[..]);
        assert_eq!(starts.iter().collect::<Vec<_>>(), vec![0, ping_len]);
        pipe.clear();
        assert!(pipe.is_empty());
        assert_eq!(pipe.encoded().unwrap(), b"");
    }

    #[test]
    fn an_argument_before_any_command_is_an_error() {
        let mut pipe = Pipeline::new();
        pipe.arg("orphan");
        assert_eq!(pipe.encoded().unwrap_err().kind(), ErrorKind::Data);
    }
}
