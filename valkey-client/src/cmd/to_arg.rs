//! [`ToArg`]: a value written as exactly one argument (a key, a field, a
//! number).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;

use super::ToArgs;

/// Something that can be written as exactly one command argument: what a
/// key, a field name or a single value is. Every `ToArg` is also a
/// [`ToArgs`] that writes that one argument; a type of your own implements
/// both:
///
/// ```
/// use valkey_client::{ArgWriter, Cmd, ToArg, ToArgs};
/// struct UserKey(u64);
/// impl ToArg for UserKey {
///     fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
///         f(format!("user:{}", self.0).as_bytes())
///     }
/// }
/// impl ToArgs for UserKey {
///     fn write_args<W: ArgWriter + ?Sized>(&self, out: &mut W) {
///         self.with_bytes(|b| out.write_arg(b));
///     }
/// }
/// let cmd = Cmd::new("GET").arg(UserKey(7));
/// assert_eq!(cmd.arg_at(1), Some(&b"user:7"[..]));
/// ```
pub trait ToArg: ToArgs {
    /// Calls `f` with the argument's bytes.
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
}

impl<T: ToArg + ?Sized> ToArg for &T {
    #[inline]
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        (**self).with_bytes(f)
    }
}

macro_rules! bytes_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            #[inline]
            fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(AsRef::<[u8]>::as_ref(self))
            }
        }
    )*};
}
bytes_arg!(str, String, [u8], Vec<u8>, Bytes);

/// Owned or shared strings and bytes: the bytes they point to.
macro_rules! deref_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            #[inline]
            fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(AsRef::<[u8]>::as_ref(&**self))
            }
        }
    )*};
}
deref_arg!(
    Cow<'_, str>,
    Cow<'_, [u8]>,
    Arc<str>,
    Box<str>,
    Arc<[u8]>,
    Box<[u8]>
);

impl<const N: usize> ToArg for [u8; N] {
    #[inline]
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(self)
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            #[inline]
            fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                f(itoa::Buffer::new().format(*self).as_bytes())
            }
        }
    )*};
}
int_arg!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

macro_rules! float_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            // Valkey reads `inf`/`-inf`; Rust's shortest round-trip formatting
            // otherwise gives exactly the value back.
            #[inline]
            fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
                if self.is_infinite() {
                    f(if *self > 0.0 { b"inf" } else { b"-inf" })
                } else {
                    f(self.to_string().as_bytes())
                }
            }
        }
    )*};
}
float_arg!(f32, f64);

/// `1` or `0`, the way Valkey's commands spell a flag.
impl ToArg for bool {
    #[inline]
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(if *self { b"1" } else { b"0" })
    }
}
