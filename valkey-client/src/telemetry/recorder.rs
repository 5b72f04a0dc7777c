//! The `metrics` feature: what a call, a retry, a reconnect and a
//! redirection add to the facade's recorder. Names in [`crate::metrics`].

use std::time::Instant;

use ::metrics::{SharedString, counter, gauge, histogram};

use crate::error::Error;
use crate::metrics::{CALL_DURATION, CALLS, ERRORS, IN_FLIGHT, RECONNECTS, REDIRECTIONS, RETRIES};

/// The `command` label: the command table's own name (static, so no
/// allocation), the name as sent for one the table does not know (a
/// module's), `pipeline` or `multi` for a batch.
fn command_label(operation: &[u8]) -> SharedString {
    match operation {
        b"PIPELINE" => SharedString::const_str("pipeline"),
        b"MULTI" => SharedString::const_str("multi"),
        _ => match crate::command::lookup(operation) {
            Some(info) => SharedString::const_str(info.name),
            None => SharedString::from_owned(String::from_utf8_lossy(operation).to_lowercase()),
        },
    }
}

/// One call from start to end. Dropped unfinished (the caller gave up on
/// the future), it still leaves the in-flight count.
pub(crate) struct CallMeter {
    command: SharedString,
    started: Instant,
}

impl CallMeter {
    pub(crate) fn start(operation: &[u8]) -> CallMeter {
        let command = command_label(operation);
        counter!(CALLS, "command" => command.clone()).increment(1);
        gauge!(IN_FLIGHT).increment(1.0);
        CallMeter {
            command,
            started: Instant::now(),
        }
    }

    pub(crate) fn finish(&self, error: Option<&Error>) {
        histogram!(CALL_DURATION, "command" => self.command.clone())
            .record(self.started.elapsed().as_secs_f64());
        if let Some(err) = error {
            counter!(ERRORS, "command" => self.command.clone(), "kind" => err.kind().name())
                .increment(1);
        }
    }
}

impl Drop for CallMeter {
    fn drop(&mut self) {
        gauge!(IN_FLIGHT).decrement(1.0);
    }
}

pub(crate) fn retry(command: &str) {
    counter!(RETRIES, "command" => command_label(command.as_bytes())).increment(1);
}

pub(crate) fn reconnect(addr: &str) {
    counter!(RECONNECTS, "server" => addr.to_string()).increment(1);
}

pub(crate) fn redirection(ask: bool) {
    let kind = if ask { "ask" } else { "moved" };
    counter!(REDIRECTIONS, "type" => kind).increment(1);
}
