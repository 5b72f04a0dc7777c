//! Builds commands from arbitrary names and arguments (bytes, strings,
//! integers and floats of every `ToArg` type, added with `arg`, `push_arg`
//! and `args`) and checks, for each `Cmd`:
//!
//! - its encoding (`to_bytes`, `write_to` after other bytes) decodes with the
//!   RESP parser to exactly one array of bulk strings, the name and then the
//!   arguments, byte for byte, and equals `resp::encode_command` of them;
//! - `arg_iter`, `arg_at`, `arg_count` and `name` give them back, and a
//!   command built from the raw bytes is equal to it;
//! - numbers are written in a form that parses back to the same value
//!   (`inf`/`-inf` for infinities);
//! - `Debug` shows the name and the count, never the arguments.
//!
//! Then the same commands go into a `Pipeline` (built in place with
//! `cmd`/`arg`/`args`, or added with `add`, with `clear` in between), which
//! is sent with `Connection::send_pipeline` to an in-process fake server on
//! a Unix socket: the bytes it receives must be exactly the concatenated
//! `Cmd` encodings, and one reply per command must come back. An argument
//! before any command must make the send fail without writing anything.
#![no_main]

use std::cell::RefCell;
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use valkey_client::resp::{Limits, Value, decode, encode_command};
use valkey_client::{Cmd, Connection, ConnectionConfig, ErrorKind, Pipeline, Protocol, ToArg};

/// One argument, as one of the types that implement `ToArg`.
#[derive(Arbitrary, Debug, Clone)]
enum Arg {
    Bytes(Vec<u8>),
    Slice(Vec<u8>),
    Shared(Vec<u8>),
    Str(String),
    StrRef(String),
    Array([u8; 3]),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    I128(i128),
    Isize(isize),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    U128(u128),
    Usize(usize),
    F32(f32),
    F64(f64),
}

/// How an argument is added to a `Cmd`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum How {
    Arg,
    PushArg,
    /// Through `args` with a one-element iterator.
    Args,
}

#[derive(Arbitrary, Debug)]
struct CmdSpec {
    name: String,
    args: Vec<(Arg, How)>,
}

#[derive(Arbitrary, Debug)]
enum PipeOp {
    /// `pipe.cmd(name)` then the arguments with `arg` (or all at once with
    /// `args` when they are all byte strings).
    Build(usize),
    /// `pipe.add(&cmd)`.
    Add(usize),
    Clear,
}

#[derive(Arbitrary, Debug)]
struct Input {
    cmds: Vec<CmdSpec>,
    ops: Vec<PipeOp>,
    /// An argument added before the first command.
    stray: bool,
    capacity: u16,
}

/// Calls `f` with the argument as its `ToArg` type.
macro_rules! with_arg {
    ($arg:expr, $f:expr) => {
        match $arg {
            Arg::Bytes(v) => $f(v.clone()),
            Arg::Slice(v) => $f(&v[..]),
            Arg::Shared(v) => $f(Bytes::from(v.clone())),
            Arg::Str(s) => $f(s.clone()),
            Arg::StrRef(s) => $f(s.as_str()),
            Arg::Array(a) => $f(*a),
            Arg::I8(n) => $f(*n),
            Arg::I16(n) => $f(*n),
            Arg::I32(n) => $f(*n),
            Arg::I64(n) => $f(*n),
            Arg::I128(n) => $f(*n),
            Arg::Isize(n) => $f(*n),
            Arg::U8(n) => $f(*n),
            Arg::U16(n) => $f(*n),
            Arg::U32(n) => $f(*n),
            Arg::U64(n) => $f(*n),
            Arg::U128(n) => $f(*n),
            Arg::Usize(n) => $f(*n),
            Arg::F32(x) => $f(*x),
            Arg::F64(x) => $f(*x),
        }
    };
}

fn bytes_of(arg: impl ToArg) -> Vec<u8> {
    arg.with_bytes(<[u8]>::to_vec)
}

fn float_ok<F: std::str::FromStr + Copy>(bytes: &[u8], x: F, bits: impl Fn(F) -> u64) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let Ok(back) = text.parse::<F>() else {
        return false;
    };
    let (a, b) = (bits(x), bits(back));
    a == b || (is_nan_bits(a) && is_nan_bits(b))
}

fn is_nan_bits(b: u64) -> bool {
    // Both f32 (widened) and f64 NaNs: compared through `f64::from_bits` of
    // the widened value below.
    f64::from_bits(b).is_nan()
}

/// The bytes an argument must be written as, checked against its value.
fn expected_bytes(arg: &Arg) -> Vec<u8> {
    let bytes = with_arg!(arg, bytes_of);
    macro_rules! int_back {
        ($n:expr) => {{
            let text = std::str::from_utf8(&bytes).expect("an integer is ASCII");
            assert_eq!(text.parse().ok(), Some(*$n), "integer written as {text:?}");
        }};
    }
    match arg {
        Arg::Bytes(v) | Arg::Slice(v) | Arg::Shared(v) => assert_eq!(&bytes, v),
        Arg::Str(s) | Arg::StrRef(s) => assert_eq!(bytes, s.as_bytes()),
        Arg::Array(a) => assert_eq!(bytes, a),
        Arg::I8(n) => int_back!(n),
        Arg::I16(n) => int_back!(n),
        Arg::I32(n) => int_back!(n),
        Arg::I64(n) => int_back!(n),
        Arg::I128(n) => int_back!(n),
        Arg::Isize(n) => int_back!(n),
        Arg::U8(n) => int_back!(n),
        Arg::U16(n) => int_back!(n),
        Arg::U32(n) => int_back!(n),
        Arg::U64(n) => int_back!(n),
        Arg::U128(n) => int_back!(n),
        Arg::Usize(n) => int_back!(n),
        Arg::F32(x) => {
            assert!(
                float_ok(&bytes, *x, |v: f32| f64::from(v).to_bits()),
                "{x:?} written as {:?}",
                String::from_utf8_lossy(&bytes)
            );
            if x.is_infinite() {
                assert_eq!(bytes, if *x > 0.0 { &b"inf"[..] } else { b"-inf" });
            }
        }
        Arg::F64(x) => {
            assert!(
                float_ok(&bytes, *x, f64::to_bits),
                "{x:?} written as {:?}",
                String::from_utf8_lossy(&bytes)
            );
            if x.is_infinite() {
                assert_eq!(bytes, if *x > 0.0 { &b"inf"[..] } else { b"-inf" });
            }
        }
    }
    bytes
}

fn add_arg(cmd: Cmd, arg: &Arg, how: How) -> Cmd {
    match how {
        How::Arg => with_arg!(arg, |a| cmd.arg(a)),
        How::PushArg => {
            let mut cmd = cmd;
            with_arg!(arg, |a| {
                cmd.push_arg(a);
            });
            cmd
        }
        How::Args => with_arg!(arg, |a| cmd.args(std::iter::once(a))),
    }
}

/// Builds the command and checks it; returns it with its expected
/// arguments (the name first).
fn build_and_check(spec: &CmdSpec) -> (Cmd, Vec<Vec<u8>>) {
    let mut expected = vec![spec.name.as_bytes().to_vec()];
    let mut cmd = Cmd::new(&spec.name);
    for (arg, how) in &spec.args {
        expected.push(expected_bytes(arg));
        cmd = add_arg(cmd, arg, *how);
    }

    // The encoding decodes to the name and arguments, byte for byte.
    let bytes = cmd.to_bytes();
    let mut buf = BytesMut::from(&bytes[..]);
    let value = decode(&mut buf, &Limits::default())
        .expect("a command decodes")
        .expect("a command is complete");
    assert!(buf.is_empty(), "bytes left after the command");
    let Value::Array(items) = value else {
        panic!("a command is not an array: {value:?}");
    };
    let decoded: Vec<Vec<u8>> = items
        .into_iter()
        .map(|v| match v {
            Value::BulkString(b) => b.to_vec(),
            other => panic!("an argument is not a bulk string: {other:?}"),
        })
        .collect();
    assert_eq!(decoded, expected);

    // Any proper prefix is incomplete, never an error or another value.
    if bytes.len() > 1 {
        let cut = bytes.len() / 2;
        let mut part = BytesMut::from(&bytes[..cut]);
        assert!(matches!(decode(&mut part, &Limits::default()), Ok(None)));
        assert_eq!(part.len(), cut, "an incomplete command consumes nothing");
    }

    // The public encoder and `write_to` after other bytes agree.
    let mut reference = BytesMut::new();
    encode_command(&mut reference, expected.iter().map(Vec::as_slice));
    assert_eq!(&reference[..], &bytes[..]);
    let mut out = BytesMut::from(&b"prefix"[..]);
    cmd.write_to(&mut out);
    assert_eq!(&out[..6], b"prefix");
    assert_eq!(&out[6..], &bytes[..]);

    // The accessors give everything back.
    assert_eq!(cmd.arg_count(), expected.len());
    assert_eq!(cmd.name(), spec.name);
    let iterated: Vec<&[u8]> = cmd.arg_iter().collect();
    assert_eq!(iterated, expected.iter().map(Vec::as_slice).collect::<Vec<_>>());
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(cmd.arg_at(i), Some(&e[..]));
    }
    assert_eq!(cmd.arg_at(expected.len()), None);

    // The same command from raw bytes is equal; a clone too.
    let raw = Cmd::new(&spec.name).args(expected[1..].iter().map(Vec::as_slice));
    assert!(raw == cmd, "raw-bytes command differs");
    assert!(cmd.clone() == cmd);

    // Debug: the name and the count only.
    assert_eq!(
        format!("{cmd:?}"),
        format!("Cmd {{ name: {:?}, args: {} }}", spec.name, expected.len())
    );
    (cmd, expected)
}

/// The fake server's end and the client's connection, kept across runs.
struct Link {
    rt: tokio::runtime::Runtime,
    conn: Connection,
    server: UnixStream,
}

thread_local! {
    static LINK: RefCell<Option<Link>> = const { RefCell::new(None) };
}

fn connect() -> Link {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = std::env::temp_dir().join(format!("valkey-fuzz-encode-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (conn, server) = rt.block_on(async {
        let listener = UnixListener::bind(&path).expect("bind");
        // RESP2, no credentials, database 0, no SETINFO: no handshake at all.
        let config = ConnectionConfig::unix(&path)
            .protocol(Protocol::Resp2)
            .set_lib_info(false)
            .response_timeout(Some(Duration::from_secs(5)));
        let (conn, accepted) = tokio::join!(Connection::connect(&config), listener.accept());
        (conn.expect("connect"), accepted.expect("accept").0)
    });
    let _ = std::fs::remove_file(&path);
    Link { rt, conn, server }
}

/// Sends the pipeline; returns the bytes the server received.
fn send(link: &mut Link, pipe: &mut Pipeline, expected_len: usize, replies: usize) -> Vec<u8> {
    let Link { rt, conn, server } = link;
    rt.block_on(async {
        let serve = async {
            let mut got = vec![0u8; expected_len];
            tokio::time::timeout(Duration::from_secs(5), server.read_exact(&mut got))
                .await
                .expect("the pipeline is shorter than its commands")
                .expect("server read");
            let mut out = Vec::with_capacity(5 * replies);
            for _ in 0..replies {
                out.extend_from_slice(b"+OK\r\n");
            }
            server.write_all(&out).await.expect("server write");
            got
        };
        let (result, got) = tokio::join!(conn.send_pipeline(pipe), serve);
        let replies_got = result.expect("the pipeline is sent and answered");
        assert_eq!(replies_got.len(), replies);
        for r in replies_got {
            assert_eq!(r.expect("reply"), Value::SimpleString(Bytes::from_static(b"OK")));
        }
        got
    })
}

/// Nothing more than the pipeline's bytes reached the server.
fn nothing_more(link: &mut Link) {
    let mut extra = [0u8; 64];
    match link.server.try_read(&mut extra) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok(n) => panic!("{n} bytes after the pipeline: {:?}", &extra[..n]),
        Err(e) => panic!("server read: {e}"),
    }
}

fuzz_target!(|input: Input| {
    let built: Vec<(Cmd, Vec<Vec<u8>>)> = input.cmds.iter().map(build_and_check).collect();

    // At most 64 operations: a few large commands repeated many times would
    // make slow runs without exercising anything new.
    let ops = &input.ops[..input.ops.len().min(64)];
    let mut pipe = Pipeline::with_capacity(usize::from(input.capacity));
    if input.stray {
        pipe.arg("stray");
    }
    // What the pipeline must send: each command's `Cmd` encoding.
    let mut expected: Vec<u8> = Vec::new();
    let mut count = 0usize;
    for op in ops {
        match op {
            PipeOp::Build(i) | PipeOp::Add(i) if built.is_empty() => {
                let _ = i;
            }
            PipeOp::Build(i) => {
                let (spec, (cmd, args)) = {
                    let i = i % built.len();
                    (&input.cmds[i], &built[i])
                };
                pipe.cmd(&spec.name);
                if spec.args.iter().all(|(a, _)| matches!(a, Arg::Slice(_))) {
                    pipe.args(args[1..].iter().map(Vec::as_slice));
                } else {
                    for (arg, _) in &spec.args {
                        with_arg!(arg, |a| {
                            pipe.arg(a);
                        });
                    }
                }
                expected.extend_from_slice(&cmd.to_bytes());
                count += 1;
            }
            PipeOp::Add(i) => {
                let (cmd, _) = &built[i % built.len()];
                pipe.add(cmd);
                expected.extend_from_slice(&cmd.to_bytes());
                count += 1;
            }
            PipeOp::Clear => {
                pipe.clear();
                expected.clear();
                count = 0;
            }
        }
        assert_eq!(pipe.len(), count);
        assert_eq!(pipe.is_empty(), count == 0);
    }
    // `clear` forgets a stray argument too.
    let stray = input.stray && !ops.iter().any(|op| matches!(op, PipeOp::Clear));

    LINK.with(|link| {
        let mut link = link.borrow_mut();
        let link = link.get_or_insert_with(connect);
        if stray {
            let e = link
                .rt
                .block_on(link.conn.send_pipeline(&mut pipe))
                .expect_err("an argument before any command is refused");
            assert_eq!(e.kind(), ErrorKind::Data);
            assert!(!link.conn.is_broken());
        } else {
            let got = send(link, &mut pipe, expected.len(), count);
            assert!(got == expected, "the pipeline sent other bytes");
            // Debug names every command once the pipeline is closed.
            let names: Vec<&str> = ops
                .iter()
                .rev()
                .take_while(|op| !matches!(op, PipeOp::Clear))
                .filter_map(|op| match op {
                    PipeOp::Build(i) | PipeOp::Add(i) if !built.is_empty() => {
                        Some(built[i % built.len()].0.name())
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            assert_eq!(
                format!("{pipe:?}"),
                format!(
                    "Pipeline {{ len: {count}, commands: {names:?}, bytes: {} }}",
                    expected.len()
                )
            );
        }
        nothing_more(link);
    });
});
