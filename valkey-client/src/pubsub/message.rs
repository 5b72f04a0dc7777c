//! [`Message`], what a [`Subscriber`](super::Subscriber) yields, and the
//! reading of what a subscribed connection receives ([`Frame`]): the same
//! shapes arrive as RESP3 pushes or, under RESP2, as plain arrays.

use bytes::Bytes;

use crate::resp::{ServerError, Value};

/// How a message reached the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageKind {
    /// Published to a channel subscribed with `SUBSCRIBE`.
    Message,
    /// Published to a channel matching a pattern subscribed with
    /// `PSUBSCRIBE` ([`Message::pattern`] says which).
    Pattern,
    /// Published with `SPUBLISH` to a shard channel subscribed with
    /// `SSUBSCRIBE`.
    Sharded,
}

/// One published message.
///
/// ```
/// use valkey_client::pubsub::{Message, MessageKind};
/// let msg = Message::new(MessageKind::Message, "news", None, "hello");
/// assert_eq!(msg.channel_str(), Some("news"));
/// assert_eq!(msg.payload_str(), Some("hello"));
/// assert_eq!(msg.pattern, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// Which subscription delivered it.
    pub kind: MessageKind,
    /// The channel it was published to.
    pub channel: Bytes,
    /// The pattern that matched the channel, for [`MessageKind::Pattern`].
    pub pattern: Option<Bytes>,
    /// What was published.
    pub payload: Bytes,
}

impl Message {
    /// A message (for tests and for code that forwards messages).
    pub fn new(
        kind: MessageKind,
        channel: impl Into<Bytes>,
        pattern: Option<Bytes>,
        payload: impl Into<Bytes>,
    ) -> Message {
        Message {
            kind,
            channel: channel.into(),
            pattern,
            payload: payload.into(),
        }
    }

    /// The channel as text, when it is valid UTF-8.
    pub fn channel_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.channel).ok()
    }

    /// The payload as text, when it is valid UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }

    /// The matching pattern as text, when there is one and it is UTF-8.
    pub fn pattern_str(&self) -> Option<&str> {
        self.pattern
            .as_deref()
            .and_then(|p| std::str::from_utf8(p).ok())
    }
}

/// The three kinds of subscription, each with its own commands and its own
/// name space on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    /// `SUBSCRIBE`.
    Channel,
    /// `PSUBSCRIBE`.
    Pattern,
    /// `SSUBSCRIBE`.
    Shard,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Kind::Channel, Kind::Pattern, Kind::Shard];

    pub(crate) fn subscribe_command(self) -> &'static str {
        match self {
            Kind::Channel => "SUBSCRIBE",
            Kind::Pattern => "PSUBSCRIBE",
            Kind::Shard => "SSUBSCRIBE",
        }
    }

    pub(crate) fn unsubscribe_command(self) -> &'static str {
        match self {
            Kind::Channel => "UNSUBSCRIBE",
            Kind::Pattern => "PUNSUBSCRIBE",
            Kind::Shard => "SUNSUBSCRIBE",
        }
    }
}

/// One value read from a subscribed connection, classified.
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    /// A published message.
    Message(Message),
    /// The server confirms a subscription.
    Subscribed { kind: Kind, name: Bytes },
    /// The server confirms an unsubscription, or (for a shard channel whose
    /// slot moved away) announces one it made on its own.
    Unsubscribed { kind: Kind, name: Bytes },
    /// The reply to `PING` (`PONG`, or under RESP2 while subscribed
    /// `["pong", ""]`).
    Pong,
    /// An error reply to the oldest command awaiting one.
    Error(ServerError),
    /// Anything else (another push type): not ours, ignored.
    Other(Value),
}

impl Frame {
    /// Reads what `value` is.
    pub(crate) fn classify(value: Value) -> Frame {
        let items = match value {
            Value::Push(items) | Value::Array(items) => items,
            Value::SimpleString(s) if s.eq_ignore_ascii_case(b"PONG") => return Frame::Pong,
            Value::Error(err) => return Frame::Error(err),
            other => return Frame::Other(other),
        };
        match classify_items(&items) {
            Some(frame) => frame,
            None => Frame::Other(Value::Push(items)),
        }
    }
}

fn classify_items(items: &[Value]) -> Option<Frame> {
    let text = |i: usize| items.get(i).and_then(Value::as_bytes).cloned();
    let head = items.first()?.as_bytes()?;
    let frame = match (head.as_ref(), items.len()) {
        (b"message", 3) => Frame::Message(Message {
            kind: MessageKind::Message,
            channel: text(1)?,
            pattern: None,
            payload: text(2)?,
        }),
        (b"smessage", 3) => Frame::Message(Message {
            kind: MessageKind::Sharded,
            channel: text(1)?,
            pattern: None,
            payload: text(2)?,
        }),
        (b"pmessage", 4) => Frame::Message(Message {
            kind: MessageKind::Pattern,
            pattern: Some(text(1)?),
            channel: text(2)?,
            payload: text(3)?,
        }),
        (b"pong", 2) => Frame::Pong,
        (name, 3) => {
            let (kind, subscribed) = confirmation(name)?;
            // The name is nil only for an unsubscribe-all with nothing to
            // unsubscribe, which this client never sends.
            let name = text(1)?;
            if subscribed {
                Frame::Subscribed { kind, name }
            } else {
                Frame::Unsubscribed { kind, name }
            }
        }
        _ => return None,
    };
    Some(frame)
}

/// The kind and direction of a confirmation push's type name.
fn confirmation(name: &[u8]) -> Option<(Kind, bool)> {
    Some(match name {
        b"subscribe" => (Kind::Channel, true),
        b"unsubscribe" => (Kind::Channel, false),
        b"psubscribe" => (Kind::Pattern, true),
        b"punsubscribe" => (Kind::Pattern, false),
        b"ssubscribe" => (Kind::Shard, true),
        b"sunsubscribe" => (Kind::Shard, false),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn messages_in_both_protocols() {
        for wrap in [Value::Push as fn(Vec<Value>) -> Value, Value::Array] {
            let frame = Frame::classify(wrap(vec![bulk("message"), bulk("ch"), bulk("hi")]));
            assert_eq!(
                frame,
                Frame::Message(Message::new(MessageKind::Message, "ch", None, "hi"))
            );
            let frame = Frame::classify(wrap(vec![
                bulk("pmessage"),
                bulk("n.*"),
                bulk("n.1"),
                bulk("x"),
            ]));
            let Frame::Message(msg) = frame else {
                panic!("not a message: {frame:?}");
            };
            assert_eq!(msg.kind, MessageKind::Pattern);
            assert_eq!(msg.pattern_str(), Some("n.*"));
            assert_eq!(msg.channel_str(), Some("n.1"));
            let frame = Frame::classify(wrap(vec![bulk("smessage"), bulk("s"), bulk("p")]));
            assert!(matches!(frame, Frame::Message(m) if m.kind == MessageKind::Sharded));
        }
    }

    #[test]
    fn confirmations_pongs_and_errors() {
        let frame = Frame::classify(Value::Push(vec![
            bulk("ssubscribe"),
            bulk("a"),
            Value::Int(1),
        ]));
        assert_eq!(
            frame,
            Frame::Subscribed {
                kind: Kind::Shard,
                name: Bytes::from_static(b"a")
            }
        );
        let frame = Frame::classify(Value::Array(vec![
            bulk("punsubscribe"),
            bulk("p*"),
            Value::Int(0),
        ]));
        assert_eq!(
            frame,
            Frame::Unsubscribed {
                kind: Kind::Pattern,
                name: Bytes::from_static(b"p*")
            }
        );
        assert_eq!(
            Frame::classify(Value::SimpleString(Bytes::from_static(b"PONG"))),
            Frame::Pong
        );
        assert_eq!(
            Frame::classify(Value::Array(vec![bulk("pong"), bulk("")])),
            Frame::Pong
        );
        let err = ServerError::from_line(b"MOVED 12 127.0.0.1:7001");
        assert_eq!(
            Frame::classify(Value::Error(err.clone())),
            Frame::Error(err)
        );
    }

    #[test]
    fn malformed_frames_are_other() {
        for value in [
            Value::Push(vec![bulk("message"), bulk("ch")]),
            Value::Push(vec![bulk("invalidate"), Value::Array(vec![bulk("k")])]),
            Value::Array(vec![bulk("subscribe"), Value::Nil, Value::Int(0)]),
            Value::Push(vec![]),
            Value::Int(3),
        ] {
            assert!(matches!(Frame::classify(value), Frame::Other(_)));
        }
    }
}
