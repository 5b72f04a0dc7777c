//! Feeds arbitrary bytes to the RESP decoder, under default and tiny limits,
//! checking that it never panics, that `None` and errors consume nothing, and
//! that every accepted value re-encodes to bytes that decode to the same
//! encoding again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use valkey_client::resp::{Limits, decode, encode_value};

fn run(data: &[u8], limits: &Limits) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decode(&mut buf, limits) {
            Ok(Some(value)) => {
                assert!(buf.len() < before, "a value must consume bytes");
                // Compare encodings rather than values so NaN compares equal.
                let mut first = BytesMut::new();
                encode_value(&mut first, &value);
                let mut copy = first.clone();
                let again = decode(&mut copy, &Limits::default())
                    .expect("re-encoded value is valid")
                    .expect("re-encoded value is complete");
                assert!(copy.is_empty());
                let mut second = BytesMut::new();
                encode_value(&mut second, &again);
                assert_eq!(first, second);
            }
            Ok(None) | Err(_) => {
                assert_eq!(buf.len(), before, "None or an error consumes nothing");
                return;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    run(data, &Limits::default());
    let mut small = Limits::default();
    small.max_bulk_len = 8;
    small.max_depth = 3;
    small.max_elements = 4;
    small.max_reply_len = 64;
    run(data, &small);
});
