//! [`ToArgs`]: a value written as zero or more arguments (a list of keys, a
//! field and its value, a whole map), and [`ArgWriter`], where they go.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::ToArg;

/// Where arguments are written: a [`Cmd`](crate::Cmd), the command a
/// [`Pipeline`](crate::Pipeline) is building, or a `Vec<Vec<u8>>` that
/// collects them (handy in tests).
pub trait ArgWriter {
    /// Appends one argument.
    fn write_arg(&mut self, bytes: &[u8]);
}

/// Collects each argument as its own byte vector.
impl ArgWriter for Vec<Vec<u8>> {
    fn write_arg(&mut self, bytes: &[u8]) {
        self.push(bytes.to_vec());
    }
}

/// Something written as zero or more arguments.
///
/// - One argument: strings, bytes (`&[u8]`, `Vec<u8>`, `[u8; N]`,
///   [`Bytes`], ...), integers, floats and `bool` (`1`/`0`), i.e. every
///   [`ToArg`] type.
/// - None or one: `Option<T>` (`None` writes nothing).
/// - Each element in order: slices, `Vec<T>`, arrays, `VecDeque<T>`,
///   `HashSet`, `BTreeSet`, tuples of up to 12 elements.
/// - Key, value, key, value, ...: `HashMap` and `BTreeMap`.
///
/// A list of bytes is one argument, not one per byte: `Vec<u8>`, `&[u8]`,
/// `[u8; N]` and `VecDeque<u8>` are a single binary string, while
/// `Vec<String>` or `Vec<i64>` are one argument per element. Integer
/// literals default to `i32`, so write raw bytes as `b"..."` or with a
/// `u8` suffix: `[0xff, 0xfe]` is two arguments (`255`, `254`), while
/// `[0xffu8, 0xfe]` is one of two bytes.
///
/// ```
/// use valkey_client::{Cmd, ToArgs};
/// let cmd = Cmd::new("DEL").arg(["a", "b"]);
/// assert_eq!(cmd.arg_count(), 3);
/// let cmd = Cmd::new("SET").arg("k").arg(vec![0u8, 1, 2]);
/// assert_eq!(cmd.arg_at(2), Some(&[0u8, 1, 2][..]));
/// assert_eq!(("field", 1, Some(2.5)).num_args(), 3);
/// ```
pub trait ToArgs {
    /// Writes the arguments, in order.
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W);

    /// How many arguments [`ToArgs::write_args`] writes (for commands that
    /// take a count before a list, such as `EVAL`'s `numkeys`).
    fn num_args(&self) -> usize {
        let mut count = Count(0);
        self.write_args(&mut count);
        count.0
    }

    /// Writes a slice of `Self`: one argument per element unless `Self`
    /// says otherwise (`u8` writes the slice as one binary string). This is
    /// what lets `Vec<u8>` be one argument and `Vec<String>` many.
    #[doc(hidden)]
    #[inline]
    fn write_args_from_slice<W: ArgWriter + ?Sized>(items: &[Self], out: &mut W)
    where
        Self: Sized,
    {
        for item in items {
            item.write_args(out);
        }
    }

    /// [`ToArgs::write_args_from_slice`] for a `VecDeque`, whose elements
    /// may sit in two pieces.
    #[doc(hidden)]
    #[inline]
    fn write_args_from_deque<W: ArgWriter + ?Sized>(items: &VecDeque<Self>, out: &mut W)
    where
        Self: Sized,
    {
        let (front, back) = items.as_slices();
        Self::write_args_from_slice(front, out);
        Self::write_args_from_slice(back, out);
    }
}

/// Counts arguments without keeping them.
struct Count(usize);

impl ArgWriter for Count {
    fn write_arg(&mut self, _: &[u8]) {
        self.0 += 1;
    }
}

impl<T: ToArgs + ?Sized> ToArgs for &T {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        (**self).write_args(out);
    }

    #[inline]
    fn num_args(&self) -> usize {
        (**self).num_args()
    }
}

/// The types that are exactly one argument: their [`ToArg`] bytes.
macro_rules! single {
    ($($t:ty),*) => {$(
        impl ToArgs for $t {
            #[inline]
            fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
                self.with_bytes(|bytes| out.write_arg(bytes));
            }

            #[inline]
            fn num_args(&self) -> usize {
                1
            }
        }
    )*};
}
single!(
    str,
    String,
    Bytes,
    Cow<'_, str>,
    Cow<'_, [u8]>,
    Arc<str>,
    Box<str>,
    Arc<[u8]>,
    Box<[u8]>,
    bool,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u16,
    u32,
    u64,
    u128,
    usize
);

/// One argument by itself; a slice of them is one binary string.
impl ToArgs for u8 {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        self.with_bytes(|bytes| out.write_arg(bytes));
    }

    #[inline]
    fn num_args(&self) -> usize {
        1
    }

    #[inline]
    fn write_args_from_slice<W: ArgWriter + ?Sized>(items: &[u8], out: &mut W) {
        out.write_arg(items);
    }

    fn write_args_from_deque<W: ArgWriter + ?Sized>(items: &VecDeque<u8>, out: &mut W) {
        match items.as_slices() {
            (front, []) => out.write_arg(front),
            (front, back) => {
                let mut joined = Vec::with_capacity(front.len() + back.len());
                joined.extend_from_slice(front);
                joined.extend_from_slice(back);
                out.write_arg(&joined);
            }
        }
    }
}

impl<T: ToArgs> ToArgs for Option<T> {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        if let Some(value) = self {
            value.write_args(out);
        }
    }

    fn num_args(&self) -> usize {
        self.as_ref().map_or(0, ToArgs::num_args)
    }
}

impl<T: ToArgs> ToArgs for [T] {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        T::write_args_from_slice(self, out);
    }
}

impl<T: ToArgs> ToArgs for Vec<T> {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        T::write_args_from_slice(self, out);
    }
}

impl<T: ToArgs, const N: usize> ToArgs for [T; N] {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        T::write_args_from_slice(self, out);
    }
}

impl<T: ToArgs> ToArgs for VecDeque<T> {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        T::write_args_from_deque(self, out);
    }
}

impl<T: ToArgs, S> ToArgs for HashSet<T, S> {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        for item in self {
            item.write_args(out);
        }
    }
}

impl<T: ToArgs> ToArgs for BTreeSet<T> {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        for item in self {
            item.write_args(out);
        }
    }
}

impl<K: ToArgs, V: ToArgs, S> ToArgs for HashMap<K, V, S> {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        for (key, value) in self {
            key.write_args(out);
            value.write_args(out);
        }
    }
}

impl<K: ToArgs, V: ToArgs> ToArgs for BTreeMap<K, V> {
    fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
        for (key, value) in self {
            key.write_args(out);
            value.write_args(out);
        }
    }
}

/// No arguments: `client.eval::<i64>("return 1", ())` for a script
/// without keys.
impl ToArgs for () {
    #[inline]
    fn write_args<W: ArgWriter + ?Sized>(&self, _: &mut W) {}

    fn num_args(&self) -> usize {
        0
    }
}

macro_rules! tuple_args {
    ($($name:ident)+) => {
        impl<$($name: ToArgs),+> ToArgs for ($($name,)+) {
            #[inline]
            #[allow(non_snake_case)]
            fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
                let ($($name,)+) = self;
                $($name.write_args(out);)+
            }

            #[allow(non_snake_case)]
            fn num_args(&self) -> usize {
                let ($($name,)+) = self;
                0 $(+ $name.num_args())+
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A B);
tuple_args!(A B C);
tuple_args!(A B C D);
tuple_args!(A B C D E);
tuple_args!(A B C D E F);
tuple_args!(A B C D E F G);
tuple_args!(A B C D E F G H);
tuple_args!(A B C D E F G H I);
tuple_args!(A B C D E F G H I J);
tuple_args!(A B C D E F G H I J K);
tuple_args!(A B C D E F G H I J K L);
