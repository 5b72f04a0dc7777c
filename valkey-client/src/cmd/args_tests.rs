//! `ToArg` and `ToArgs`: every impl, the one-argument rule for bytes, and a
//! property test that what a value writes is what the command holds.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::pipeline::Pipeline;

/// The arguments `value` writes.
fn args_of(value: impl ToArgs) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    value.write_args(&mut out);
    assert_eq!(value.num_args(), out.len(), "num_args agrees");
    out
}

fn strs(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// The arguments of `cmd` after its name, read back from its encoding.
fn tail(cmd: &Cmd) -> Vec<Vec<u8>> {
    cmd.arg_iter().skip(1).map(<[u8]>::to_vec).collect()
}

#[test]
fn single_argument_types() {
    assert_eq!(args_of("s"), strs(&["s"]));
    assert_eq!(args_of(String::from("s")), strs(&["s"]));
    assert_eq!(args_of(Bytes::from_static(b"b")), strs(&["b"]));
    assert_eq!(args_of(Cow::Borrowed("c")), strs(&["c"]));
    assert_eq!(args_of(Cow::<str>::Owned("c".into())), strs(&["c"]));
    assert_eq!(args_of(Cow::Borrowed(&b"c"[..])), strs(&["c"]));
    assert_eq!(args_of(Arc::<str>::from("a")), strs(&["a"]));
    assert_eq!(args_of(Box::<str>::from("b")), strs(&["b"]));
    assert_eq!(args_of(Arc::<[u8]>::from(&b"a"[..])), strs(&["a"]));
    assert_eq!(args_of(Box::<[u8]>::from(&b"b"[..])), strs(&["b"]));
    assert_eq!(args_of(true), strs(&["1"]));
    assert_eq!(args_of(false), strs(&["0"]));
    assert_eq!(args_of(-7i8), strs(&["-7"]));
    assert_eq!(args_of(200u8), strs(&["200"]));
    assert_eq!(
        args_of(i128::MIN),
        strs(&["-170141183460469231731687303715884105728"])
    );
    assert_eq!(args_of(usize::MAX), strs(&[&usize::MAX.to_string()]));
    assert_eq!(args_of(2.5f32), strs(&["2.5"]));
    assert_eq!(args_of(f64::NEG_INFINITY), strs(&["-inf"]));
    let deep: &&&str = &&"deep";
    assert_eq!(args_of(deep), strs(&["deep"]));
    // `ToArg` agrees for the new single-argument types.
    assert!(true.with_bytes(|b| b == b"1"));
    assert!(Arc::<str>::from("x").with_bytes(|b| b == b"x"));
    assert!(Cow::Borrowed(&b"y"[..]).with_bytes(|b| b == b"y"));
}

#[test]
fn bytes_are_one_argument_other_lists_many() {
    assert_eq!(args_of(vec![1u8, 2, 3]), vec![vec![1u8, 2, 3]]);
    assert_eq!(args_of(&[1u8, 2][..]), vec![vec![1u8, 2]]);
    assert_eq!(args_of([9u8; 4]), vec![vec![9u8; 4]]);
    assert_eq!(args_of(b"raw"), strs(&["raw"]));
    assert_eq!(args_of(Vec::<u8>::new()), vec![Vec::<u8>::new()]);
    // A deque of bytes split in two pieces is still one argument.
    let mut deque: VecDeque<u8> = VecDeque::with_capacity(4);
    deque.extend([3, 4]);
    deque.push_front(2);
    deque.push_front(1);
    assert_eq!(args_of(&deque), vec![vec![1u8, 2, 3, 4]]);
    // Lists of anything else: one argument per element.
    assert_eq!(args_of(vec!["a", "b"]), strs(&["a", "b"]));
    assert_eq!(args_of(vec![1i8, 2]), strs(&["1", "2"]));
    assert_eq!(args_of([10u16, 20]), strs(&["10", "20"]));
    assert_eq!(args_of(VecDeque::from(vec![1u32, 2])), strs(&["1", "2"]));
    assert_eq!(args_of(Vec::<String>::new()), Vec::<Vec<u8>>::new());
    // A list of byte strings: one argument per byte string.
    assert_eq!(
        args_of(vec![vec![1u8], vec![2u8, 3]]),
        vec![vec![1u8], vec![2u8, 3]]
    );
    assert_eq!(args_of([&b"x"[..], b"yz"]), strs(&["x", "yz"]));
}

#[test]
fn options_tuples_sets_and_maps() {
    assert_eq!(args_of(None::<&str>), Vec::<Vec<u8>>::new());
    assert_eq!(args_of(Some(5)), strs(&["5"]));
    assert_eq!(args_of(Some(vec!["a", "b"])), strs(&["a", "b"]));
    assert_eq!(args_of(("f", 1, 2.5, true)), strs(&["f", "1", "2.5", "1"]));
    assert_eq!(args_of(("EX", None::<u64>)), strs(&["EX"]));
    assert_eq!(args_of((1,)), strs(&["1"]));
    assert_eq!(
        args_of((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)),
        strs(&[
            "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"
        ])
    );
    assert_eq!(
        args_of([("f1", "v1"), ("f2", "v2")]),
        strs(&["f1", "v1", "f2", "v2"])
    );
    assert_eq!(
        args_of(BTreeMap::from([("b", 2), ("a", 1)])),
        strs(&["a", "1", "b", "2"])
    );
    assert_eq!(args_of(BTreeSet::from(["y", "x"])), strs(&["x", "y"]));
    let map = HashMap::from([("k1", "v1"), ("k2", "v2")]);
    let written = args_of(&map);
    assert_eq!(written.len(), 4);
    for pair in written.chunks(2) {
        let key = std::str::from_utf8(&pair[0]).unwrap();
        assert_eq!(map[key].as_bytes(), &pair[1][..]);
    }
    let set: HashSet<i64> = HashSet::from([1, 2, 3]);
    let mut written = args_of(&set);
    written.sort();
    assert_eq!(written, strs(&["1", "2", "3"]));
}

#[test]
fn cmd_and_pipeline_expand_arguments() {
    let cmd = Cmd::new("DEL").arg(["a", "b"]);
    assert_eq!(cmd.arg_count(), 3);
    assert_eq!(tail(&cmd), strs(&["a", "b"]));
    let mut cmd = Cmd::new("HSET").arg("h");
    cmd.push_arg(("field", 1)).push_arg(None::<i64>);
    assert_eq!(cmd.arg_count(), 4);
    assert_eq!(tail(&cmd), strs(&["h", "field", "1"]));

    let mut pipe = Pipeline::new();
    pipe.cmd("MSET").arg([("a", 1), ("b", 2)]).arg(None::<&str>);
    pipe.cmd("DEL").arg(vec!["a", "b"]);
    let expected = {
        let mut out = BytesMut::new();
        Cmd::new("MSET")
            .args(["a", "1", "b", "2"])
            .write_to(&mut out);
        Cmd::new("DEL").args(["a", "b"]).write_to(&mut out);
        out
    };
    assert_eq!(pipe.encoded().unwrap(), &expected[..]);
}

#[test]
fn a_pipeline_argument_before_any_command_is_refused_even_if_empty() {
    let mut pipe = Pipeline::new();
    pipe.arg(None::<&str>);
    assert!(pipe.encoded().is_err());
    let mut pipe = Pipeline::new();
    pipe.arg(["a", "b"]);
    assert!(pipe.encoded().is_err());
}

#[test]
fn ten_or_more_arguments_widen_the_pipeline_header() {
    let mut pipe = Pipeline::new();
    let values: Vec<i64> = (0..20).collect();
    pipe.cmd("RPUSH").arg("list").arg(&values);
    let mut expected = BytesMut::new();
    Cmd::new("RPUSH")
        .arg("list")
        .args(&values)
        .write_to(&mut expected);
    assert_eq!(pipe.encoded().unwrap(), &expected[..]);
}

/// One shape a property test builds a command from.
#[derive(Debug, Clone)]
enum Shape {
    Strings(Vec<String>),
    Bytes(Vec<u8>),
    ByteStrings(Vec<Vec<u8>>),
    Ints(Vec<i64>),
    Pairs(Vec<(String, i64)>),
    Tuple(String, Option<u32>, Vec<u8>, bool),
    Map(BTreeMap<String, Vec<String>>),
}

impl Shape {
    /// Adds the value to `cmd` and returns the arguments it should add,
    /// worked out without `ToArgs`.
    fn apply(&self, cmd: Cmd) -> (Cmd, Vec<Vec<u8>>) {
        let b = |s: &str| s.as_bytes().to_vec();
        match self {
            Shape::Strings(v) => (cmd.arg(v), v.iter().map(|s| b(s)).collect()),
            Shape::Bytes(v) => (cmd.arg(v), vec![v.clone()]),
            Shape::ByteStrings(v) => (cmd.arg(v), v.clone()),
            Shape::Ints(v) => (
                cmd.arg(&v[..]),
                v.iter().map(|i| b(&i.to_string())).collect(),
            ),
            Shape::Pairs(v) => (
                cmd.arg(v),
                v.iter()
                    .flat_map(|(k, i)| [b(k), b(&i.to_string())])
                    .collect(),
            ),
            Shape::Tuple(s, n, bytes, flag) => {
                let mut want = vec![b(s)];
                want.extend(n.map(|n| b(&n.to_string())));
                want.push(bytes.clone());
                want.push(b(if *flag { "1" } else { "0" }));
                (cmd.arg((s, n, bytes, flag)), want)
            }
            Shape::Map(m) => (
                cmd.arg(m),
                m.iter()
                    .flat_map(|(k, vs)| std::iter::once(b(k)).chain(vs.iter().map(|v| b(v))))
                    .collect(),
            ),
        }
    }

    /// Adds the value to the pipeline's open command.
    fn add_to(&self, pipe: &mut Pipeline) {
        match self {
            Shape::Strings(v) => pipe.arg(v),
            Shape::Bytes(v) => pipe.arg(v),
            Shape::ByteStrings(v) => pipe.arg(v),
            Shape::Ints(v) => pipe.arg(&v[..]),
            Shape::Pairs(v) => pipe.arg(v),
            Shape::Tuple(s, n, bytes, flag) => pipe.arg((s, n, bytes, flag)),
            Shape::Map(m) => pipe.arg(m),
        };
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    let text = ".{0,12}";
    let bytes = proptest::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        proptest::collection::vec(text, 0..6).prop_map(Shape::Strings),
        bytes.clone().prop_map(Shape::Bytes),
        proptest::collection::vec(bytes.clone(), 0..5).prop_map(Shape::ByteStrings),
        proptest::collection::vec(any::<i64>(), 0..6).prop_map(Shape::Ints),
        proptest::collection::vec((text, any::<i64>()), 0..5).prop_map(Shape::Pairs),
        (text, any::<Option<u32>>(), bytes, any::<bool>())
            .prop_map(|(s, n, b, f)| Shape::Tuple(s, n, b, f)),
        proptest::collection::btree_map(text, proptest::collection::vec(text, 0..3), 0..4)
            .prop_map(Shape::Map),
    ]
}

proptest! {
    #[test]
    fn written_arguments_read_back(shapes in proptest::collection::vec(shape(), 0..5)) {
        let mut cmd = Cmd::new("CMD");
        let mut want = Vec::new();
        let mut pipe = Pipeline::new();
        pipe.cmd("CMD");
        for s in &shapes {
            let (next, args) = s.apply(cmd);
            cmd = next;
            want.extend(args);
            s.add_to(&mut pipe);
        }
        prop_assert_eq!(cmd.arg_count(), want.len() + 1);
        prop_assert_eq!(tail(&cmd), want);
        // The pipeline writes the same bytes for the same values.
        let mut encoded = BytesMut::new();
        cmd.write_to(&mut encoded);
        prop_assert_eq!(pipe.encoded().unwrap(), &encoded[..]);
    }
}
