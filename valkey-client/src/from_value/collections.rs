//! Lists, sets and maps.
//!
//! The rules, the same for RESP2 and RESP3:
//!
//! - A list type (`Vec`, `VecDeque`, arrays, sets) reads an array, set or
//!   push reply element by element; a null reply is empty.
//! - A RESP3 map read into a list is flattened to `key, value, key, value`,
//!   as RESP2 would have sent it, unless the element type is a pair (a
//!   2-tuple such as `(String, f64)`), which reads one entry per element.
//! - A list of pairs also reads an array: one pair per element when every
//!   element is an array (RESP3's `ZRANGE ... WITHSCORES`), otherwise the
//!   flat `key, value, ...` of RESP2 (which needs an even length).
//! - A map type reads a RESP3 map or an array, by the same rule as a list
//!   of pairs.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hash};

use super::{FromValue, data, mismatch, strip};
use crate::error::Result;
use crate::resp::Value;

/// Whether `value` is an array, attributes looked through.
fn is_nil(value: &Value) -> bool {
    match value {
        Value::Nil => true,
        Value::Attribute { value, .. } => is_nil(value),
        _ => false,
    }
}

fn is_array(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Attribute { value, .. } => is_array(value),
        _ => false,
    }
}

/// The number of pairs in a flat array of `len` elements.
fn flat_pairs(len: usize, wanted: &str) -> Result<usize> {
    if len.is_multiple_of(2) {
        Ok(len / 2)
    } else {
        Err(data(format!(
            "cannot convert an array of {len} elements (an odd number) into {wanted} \
             of key, value pairs"
        )))
    }
}

/// Reads a list reply into the collection `init` makes, one element at a
/// time (see the module's rules).
fn read_list<T: FromValue, C>(
    value: Value,
    wanted: &str,
    init: impl FnOnce(usize) -> C,
    mut add: impl FnMut(&mut C, T),
) -> Result<C> {
    match strip(value) {
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            // One pair per element when every element is an array or a nil
            // (a missing entry: GEOPOS of an unknown member), flat
            // `key, value, ...` otherwise.
            if T::READS_PAIRS && !items.iter().all(|v| is_array(v) || is_nil(v)) {
                let mut out = init(flat_pairs(items.len(), wanted)?);
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    add(&mut out, T::from_pair(key, value)?);
                }
                Ok(out)
            } else {
                let mut out = init(items.len());
                for item in items {
                    add(&mut out, T::from_value(item)?);
                }
                Ok(out)
            }
        }
        Value::Map(pairs) if T::READS_PAIRS => {
            let mut out = init(pairs.len());
            for (key, value) in pairs {
                add(&mut out, T::from_pair(key, value)?);
            }
            Ok(out)
        }
        Value::Map(pairs) => {
            let mut out = init(pairs.len().saturating_mul(2));
            for (key, value) in pairs {
                add(&mut out, T::from_value(key)?);
                add(&mut out, T::from_value(value)?);
            }
            Ok(out)
        }
        Value::Nil => Ok(init(0)),
        other => Err(mismatch(other, wanted)),
    }
}

/// Splits a two-element array into key and value.
fn split_pair(item: Value, wanted: &str) -> Result<(Value, Value)> {
    match strip(item) {
        Value::Array(two) if two.len() == 2 => {
            let mut two = two.into_iter();
            match (two.next(), two.next()) {
                (Some(key), Some(value)) => Ok((key, value)),
                _ => Err(data("a two-element array ended early")),
            }
        }
        Value::Array(other) => Err(data(format!(
            "cannot convert an array of {} elements into a key, value pair of {wanted}",
            other.len()
        ))),
        other => Err(mismatch(other, wanted)),
    }
}

/// Reads a map reply (a RESP3 map, or an array of pairs) into the
/// collection `init` makes, one entry at a time.
fn read_map<C>(
    value: Value,
    wanted: &str,
    init: impl FnOnce(usize) -> C,
    mut add: impl FnMut(&mut C, Value, Value) -> Result<()>,
) -> Result<C> {
    match strip(value) {
        Value::Map(pairs) => {
            let mut out = init(pairs.len());
            for (key, value) in pairs {
                add(&mut out, key, value)?;
            }
            Ok(out)
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(is_array) => {
            let mut out = init(items.len());
            for item in items {
                let (key, value) = split_pair(item, wanted)?;
                add(&mut out, key, value)?;
            }
            Ok(out)
        }
        // RESP2 sends maps as flat arrays of key, value, key, value.
        Value::Array(items) => {
            let mut out = init(flat_pairs(items.len(), wanted)?);
            let mut items = items.into_iter();
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                add(&mut out, key, value)?;
            }
            Ok(out)
        }
        Value::Nil => Ok(init(0)),
        other => Err(mismatch(other, wanted)),
    }
}

/// See the module's rules.
impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Result<Self> {
        read_list(value, "a list", Vec::with_capacity, Vec::push)
    }

    fn from_results(results: Vec<Result<Value>>) -> Result<Self> {
        results.into_iter().map(T::from_result).collect()
    }
}

impl<T: FromValue> FromValue for VecDeque<T> {
    fn from_value(value: Value) -> Result<Self> {
        read_list(
            value,
            "a list",
            VecDeque::with_capacity,
            VecDeque::push_back,
        )
    }

    fn from_results(results: Vec<Result<Value>>) -> Result<Self> {
        results.into_iter().map(T::from_result).collect()
    }
}

/// A list of exactly `N` elements; another length is a Data error.
impl<T: FromValue, const N: usize> FromValue for [T; N] {
    fn from_value(value: Value) -> Result<Self> {
        exactly(Vec::from_value(value)?)
    }

    fn from_results(results: Vec<Result<Value>>) -> Result<Self> {
        if results.len() != N {
            return Err(data(format!(
                "cannot convert {} replies into an array of {N}",
                results.len()
            )));
        }
        exactly(Vec::from_results(results)?)
    }
}

fn exactly<T, const N: usize>(items: Vec<T>) -> Result<[T; N]> {
    let len = items.len();
    <[T; N]>::try_from(items).map_err(|_| {
        data(format!(
            "cannot convert a list of {len} elements into an array of {N}"
        ))
    })
}

impl<T: FromValue + Eq + Hash, S: BuildHasher + Default> FromValue for HashSet<T, S> {
    fn from_value(value: Value) -> Result<Self> {
        read_list(
            value,
            "a set",
            |n| HashSet::with_capacity_and_hasher(n, S::default()),
            |set, item| {
                set.insert(item);
            },
        )
    }
}

impl<T: FromValue + Ord> FromValue for BTreeSet<T> {
    fn from_value(value: Value) -> Result<Self> {
        read_list(
            value,
            "a set",
            |_| BTreeSet::new(),
            |set, item| {
                set.insert(item);
            },
        )
    }
}

/// See the module's rules; a repeated key keeps its last value.
impl<K: FromValue + Eq + Hash, V: FromValue, S: BuildHasher + Default> FromValue
    for HashMap<K, V, S>
{
    fn from_value(value: Value) -> Result<Self> {
        read_map(
            value,
            "a map",
            |n| HashMap::with_capacity_and_hasher(n, S::default()),
            |map, key, value| {
                map.insert(K::from_value(key)?, V::from_value(value)?);
                Ok(())
            },
        )
    }
}

/// See the module's rules; a repeated key keeps its last value.
impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(value: Value) -> Result<Self> {
        read_map(
            value,
            "a map",
            |_| BTreeMap::new(),
            |map, key, value| {
                map.insert(K::from_value(key)?, V::from_value(value)?);
                Ok(())
            },
        )
    }
}
