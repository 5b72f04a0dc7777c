//! Tuples of up to 12 elements, each of its own type.
//!
//! A tuple of `n` reads an array (or set) of exactly `n` elements, or a
//! RESP3 map whose entries, flattened to `key, value, ...`, are `n`
//! (so `(String, String)` reads `CONFIG GET maxmemory` in RESP2 and RESP3
//! alike). A 2-tuple is also a key, value pair inside a list: see the
//! `collections` module.

use super::{FromValue, data, mismatch, strip};
use crate::error::Result;
use crate::resp::Value;

/// The elements of a reply read as a tuple of `n`.
fn tuple_items(value: Value, n: usize) -> Result<std::vec::IntoIter<Value>> {
    let items: Vec<Value> = match strip(value) {
        Value::Array(items) | Value::Set(items) | Value::Push(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => return Err(mismatch(other, &format!("a tuple of {n}"))),
    };
    if items.len() != n {
        return Err(data(format!(
            "cannot convert an array of {} elements into a tuple of {n}",
            items.len()
        )));
    }
    Ok(items.into_iter())
}

/// The next element; the length was checked, so the fallback is never used.
fn next(items: &mut std::vec::IntoIter<Value>) -> Value {
    items.next().unwrap_or(Value::Nil)
}

/// The results of a pipeline read as a tuple of `n`.
fn tuple_results(
    results: Vec<Result<Value>>,
    n: usize,
) -> Result<std::vec::IntoIter<Result<Value>>> {
    if results.len() != n {
        return Err(data(format!(
            "cannot convert {} replies into a tuple of {n}",
            results.len()
        )));
    }
    Ok(results.into_iter())
}

/// The next result; the length was checked, so the fallback is never used.
fn next_result(results: &mut std::vec::IntoIter<Result<Value>>) -> Result<Value> {
    results.next().unwrap_or(Ok(Value::Nil))
}

macro_rules! tuple_from_value {
    ($n:literal; $($name:ident)+; { $($extra:tt)* }) => {
        impl<$($name: FromValue),+> FromValue for ($($name,)+) {
            fn from_value(value: Value) -> Result<Self> {
                let mut items = tuple_items(value, $n)?;
                Ok(($($name::from_value(next(&mut items))?,)+))
            }

            fn from_results(results: Vec<Result<Value>>) -> Result<Self> {
                let mut results = tuple_results(results, $n)?;
                Ok(($($name::from_result(next_result(&mut results))?,)+))
            }

            $($extra)*
        }
    };
}

tuple_from_value!(1; A; {});
tuple_from_value!(2; A B; {
    const READS_PAIRS: bool = true;

    fn from_pair(key: Value, value: Value) -> Result<Self> {
        Ok((A::from_value(key)?, B::from_value(value)?))
    }
});
tuple_from_value!(3; A B C; {});
tuple_from_value!(4; A B C D; {});
tuple_from_value!(5; A B C D E; {});
tuple_from_value!(6; A B C D E F; {});
tuple_from_value!(7; A B C D E F G; {});
tuple_from_value!(8; A B C D E F G H; {});
tuple_from_value!(9; A B C D E F G H I; {});
tuple_from_value!(10; A B C D E F G H I J; {});
tuple_from_value!(11; A B C D E F G H I J K; {});
tuple_from_value!(12; A B C D E F G H I J K L; {});
