//! The one [`Error`] type of the library and its [`ErrorKind`].
//!
//! Kinds mirror valkey-py's exception tree, flattened, each with a
//! [`ErrorFamily`]. Every error also records where its request stood
//! ([`Delivery`]): retry decisions need the kind, the family and the delivery
//! state together.

use std::fmt;
use std::sync::Arc;

use crate::resp::{ProtocolError, ServerError};

/// The result type of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a flat list of kinds grouped into families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    // Connection family.
    /// The connection could not be opened, was closed or broke.
    Connection,
    /// Authentication failed: `WRONGPASS`, `NOAUTH`, an invalid password.
    Authentication,
    /// The handshake was refused for lack of permission (`NOPERM` on `HELLO`/`AUTH`).
    Authorization,
    /// The server is loading its dataset (`LOADING`).
    BusyLoading,
    /// The server refused a new client: `max number of clients reached`.
    MaxConnections,
    // Timeout family.
    /// No reply (or no connection) within the configured time.
    Timeout,
    // Response family: the server answered with an error.
    /// A server error reply with `ERR` or a code not listed below, `BUSY`
    /// (a script or function is running) among them.
    Response,
    /// `NOSCRIPT`: the script is not in the server's cache.
    NoScript,
    /// `OOM`: the command needs memory the server may not use.
    OutOfMemory,
    /// `EXECABORT`: a transaction was discarded because of earlier errors.
    ExecAbort,
    /// `READONLY`: a write was sent to a read-only replica.
    ReadOnly,
    /// `NOPERM`: the user may not run this command or touch this key.
    NoPermission,
    /// An error from a module or about loading one.
    Module,
    /// `MOVED`: the slot lives on another node.
    Moved,
    /// `ASK`: the slot is migrating; ask the other node once.
    Ask,
    /// `TRYAGAIN`: a multi-key command during resharding; try again later.
    TryAgain,
    /// `CROSSSLOT`: the keys of one command hash to different slots.
    CrossSlot,
    /// `CLUSTERDOWN`: the cluster cannot serve the slot.
    ClusterDown,
    /// `MASTERDOWN`: the replica lost its primary.
    MasterDown,
    // Client side.
    /// A bad argument given by the caller, or a reply that does not convert
    /// to the type asked for.
    Data,
    /// A client setting that cannot work: a cluster client without seeds, a
    /// client built outside a tokio runtime, a blocking client called
    /// inside one, a pipeline larger than the connection allows. Nothing was
    /// sent; fix the configuration or the call.
    Config,
    /// A connection URL that does not parse or holds something this client
    /// cannot honour. The message names the problem and never the password.
    InvalidUrl,
    /// TLS could not be set up: PEM text without a usable certificate or
    /// key, an invalid server name, settings that contradict each other (a
    /// CA given beside the caller's own `rustls::ClientConfig`), no crypto
    /// provider (neither the `ring` nor the `aws-lc-rs` feature, and none
    /// installed by the application), an empty platform certificate store,
    /// or the server's certificate rejected during the handshake. Retrying
    /// does not help until the certificates or the settings change.
    Tls,
    /// Misuse of a subscribed connection.
    PubSub,
    /// A watched key changed, or a connection broke while watching.
    Watch,
    /// The server broke the protocol: a malformed, oversized or unexpected reply.
    InvalidResponse,
    /// A cluster-level failure: redirections exhausted, no reachable node, no agreement on slots.
    Cluster,
    /// No node serves the slot of the key.
    SlotNotCovered,
    /// A command that changes or depends on the state of its connection
    /// (`SUBSCRIBE`, `MULTI`, `WATCH`, `SELECT`, `CLIENT REPLY`, ...) was
    /// sent where connections are shared, or a blocking command (`BLPOP`,
    /// ...) was put in a pipeline on one; nothing was sent, and the message
    /// names the API to use.
    StatefulCommand,
}

/// The families kinds are grouped into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorFamily {
    /// Connection, Authentication, Authorization, BusyLoading, MaxConnections.
    Connection,
    /// Timeout.
    Timeout,
    /// Server error replies.
    Response,
    /// Errors raised by the client itself.
    ClientSide,
}

impl ErrorKind {
    /// The family this kind belongs to.
    pub fn family(self) -> ErrorFamily {
        use ErrorKind::*;
        match self {
            Connection | Authentication | Authorization | BusyLoading | MaxConnections => {
                ErrorFamily::Connection
            }
            Timeout => ErrorFamily::Timeout,
            Response | NoScript | OutOfMemory | ExecAbort | ReadOnly | NoPermission | Module
            | Moved | Ask | TryAgain | CrossSlot | ClusterDown | MasterDown => {
                ErrorFamily::Response
            }
            Data | Config | InvalidUrl | Tls | PubSub | Watch | InvalidResponse | Cluster
            | SlotNotCovered | StatefulCommand => ErrorFamily::ClientSide,
        }
    }

    /// Whether an error of kind `other` is covered when `self` is listed, e.g.
    /// in `retry_on_error`. A kind covers itself; `Connection` covers its whole
    /// family (as valkey-py's `ConnectionError` is the base class of
    /// `BusyLoadingError` and `AuthenticationError`), and `Response` covers
    /// every server error reply.
    pub fn covers(self, other: ErrorKind) -> bool {
        self == other
            || (self == ErrorKind::Connection && other.family() == ErrorFamily::Connection)
            || (self == ErrorKind::Response && other.family() == ErrorFamily::Response)
    }

    /// Whether an error of this kind leaves the connection unusable: the
    /// connection family (a refused handshake, `LOADING`, a broken socket) and
    /// protocol violations. A timeout is decided by the connection itself.
    pub fn closes_connection(self) -> bool {
        self.family() == ErrorFamily::Connection || self == ErrorKind::InvalidResponse
    }

    /// The kind of a server error reply, chosen by its code (and, for `ERR`,
    /// by the few messages valkey-py singles out).
    pub fn from_server_error(err: &ServerError) -> ErrorKind {
        match err.code.as_str() {
            "ERR" => {
                let m = err.message.as_str();
                if m.starts_with("max number of clients reached") {
                    ErrorKind::MaxConnections
                } else if m.starts_with("invalid password")
                    || m.starts_with("invalid username-password pair")
                    || m.starts_with("Client sent AUTH, but no password is set")
                    || m.starts_with("AUTH <password> called without any password configured")
                {
                    ErrorKind::Authentication
                } else if m.starts_with("Error loading the extension")
                    || m.starts_with("Error unloading module")
                    || m.starts_with("Error loading module")
                {
                    ErrorKind::Module
                } else {
                    ErrorKind::Response
                }
            }
            "WRONGPASS" | "NOAUTH" => ErrorKind::Authentication,
            "LOADING" => ErrorKind::BusyLoading,
            "NOSCRIPT" => ErrorKind::NoScript,
            "OOM" => ErrorKind::OutOfMemory,
            "EXECABORT" => ErrorKind::ExecAbort,
            "READONLY" => ErrorKind::ReadOnly,
            "NOPERM" => ErrorKind::NoPermission,
            "MOVED" => ErrorKind::Moved,
            "ASK" => ErrorKind::Ask,
            "TRYAGAIN" => ErrorKind::TryAgain,
            "CROSSSLOT" => ErrorKind::CrossSlot,
            "CLUSTERDOWN" => ErrorKind::ClusterDown,
            "MASTERDOWN" => ErrorKind::MasterDown,
            _ => ErrorKind::Response,
        }
    }

    /// The kind's name as written here (`"Timeout"`, `"Connection"`), for
    /// logs, span attributes (`error.type`) and metric labels.
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            Connection => "Connection",
            Authentication => "Authentication",
            Authorization => "Authorization",
            BusyLoading => "BusyLoading",
            MaxConnections => "MaxConnections",
            Timeout => "Timeout",
            Response => "Response",
            NoScript => "NoScript",
            OutOfMemory => "OutOfMemory",
            ExecAbort => "ExecAbort",
            ReadOnly => "ReadOnly",
            NoPermission => "NoPermission",
            Module => "Module",
            Moved => "Moved",
            Ask => "Ask",
            TryAgain => "TryAgain",
            CrossSlot => "CrossSlot",
            ClusterDown => "ClusterDown",
            MasterDown => "MasterDown",
            Data => "Data",
            Config => "Config",
            InvalidUrl => "InvalidUrl",
            Tls => "Tls",
            PubSub => "PubSub",
            Watch => "Watch",
            InvalidResponse => "InvalidResponse",
            Cluster => "Cluster",
            SlotNotCovered => "SlotNotCovered",
            StatefulCommand => "StatefulCommand",
        }
    }

    fn describe(self) -> &'static str {
        use ErrorKind::*;
        match self {
            Connection => "connection error",
            Authentication => "authentication failed",
            Authorization => "not authorized",
            BusyLoading => "server is loading its dataset",
            MaxConnections => "server refused: too many clients",
            Timeout => "timed out",
            Response => "server error",
            NoScript => "script not found",
            OutOfMemory => "server out of memory",
            ExecAbort => "transaction aborted",
            ReadOnly => "read-only replica",
            NoPermission => "no permission",
            Module => "module error",
            Moved => "slot moved",
            Ask => "slot migrating (ASK)",
            TryAgain => "try again",
            CrossSlot => "keys in different slots",
            ClusterDown => "cluster down",
            MasterDown => "primary down",
            Data => "invalid data",
            Config => "invalid configuration",
            InvalidUrl => "invalid connection URL",
            Tls => "TLS setup failed",
            PubSub => "pub/sub misuse",
            Watch => "watched key changed",
            InvalidResponse => "invalid response from server",
            Cluster => "cluster error",
            SlotNotCovered => "slot not covered",
            StatefulCommand => "not for a shared connection",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Where a request stood when it failed. Retrying is harmless for `NotSent`;
/// for `SentNoReply` the command may or may not have run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Delivery {
    /// The request never left the client (or the failure is not tied to one).
    NotSent,
    /// The request was written, but no reply came: it may have run. For a
    /// call that was retried, the strongest state over all its attempts
    /// counts: an earlier attempt that may have run makes the call's error
    /// `SentNoReply` even when its last attempt was never sent, so
    /// `NotSent` always means the command did not run.
    SentNoReply,
    /// The server replied (with an error).
    Replied,
}

/// The error type of every fallible operation in this library.
///
/// Boxed inside so that `Result<T>` stays small on the hot path. Cloning is
/// cheap enough for the error paths that share one failure among callers.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    delivery: Delivery,
    message: String,
    server: Option<ServerError>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                delivery: Delivery::NotSent,
                message: message.into(),
                server: None,
                source: None,
            }),
        }
    }

    /// The error for a server error reply: kind chosen by its code, code and
    /// message kept, delivery [`Delivery::Replied`].
    pub fn from_server(err: ServerError) -> Error {
        let kind = ErrorKind::from_server_error(&err);
        Error {
            inner: Box::new(Inner {
                kind,
                delivery: Delivery::Replied,
                message: String::new(),
                server: Some(err),
                source: None,
            }),
        }
    }

    /// An I/O failure: a timeout if the OS said so, otherwise a connection error.
    pub fn io(context: impl Into<String>, err: std::io::Error) -> Error {
        let kind = match err.kind() {
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Connection,
        };
        Error::new(kind, context).with_source(err)
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// Records where the request stood.
    pub fn with_delivery(mut self, delivery: Delivery) -> Error {
        self.inner.delivery = delivery;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The family of [`Error::kind`].
    pub fn family(&self) -> ErrorFamily {
        self.inner.kind.family()
    }

    /// Where the request stood when it failed.
    pub fn delivery(&self) -> Delivery {
        self.inner.delivery
    }

    /// The call ran out of time ([`ErrorKind::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// The connection failed or could not be opened (the
    /// [`ErrorFamily::Connection`] kinds: I/O, authentication, loading,
    /// too many clients).
    pub fn is_connection(&self) -> bool {
        self.family() == ErrorFamily::Connection
    }

    /// The server answered with an error reply ([`Error::server_error`]
    /// has it).
    pub fn is_server_error(&self) -> bool {
        self.inner.server.is_some()
    }

    /// A transient failure that the same call may get past later: a lost
    /// connection, a timeout, a server loading or out of clients, a cluster
    /// in the middle of a change (`TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`).
    /// Not a judgement on whether the command may run twice: for that, see
    /// [`Error::may_have_run`].
    pub fn is_retryable(&self) -> bool {
        use ErrorKind::*;
        matches!(
            self.kind(),
            Connection
                | BusyLoading
                | MaxConnections
                | Timeout
                | TryAgain
                | ClusterDown
                | MasterDown
        )
    }

    /// The command may have run although no reply came
    /// ([`Delivery::SentNoReply`]): repeating a command that is not safe to
    /// repeat could apply it twice.
    pub fn may_have_run(&self) -> bool {
        self.delivery() == Delivery::SentNoReply
    }

    /// The server's error code (`ERR`, `MOVED`, ...) for a server error reply.
    pub fn code(&self) -> Option<&str> {
        self.inner.server.as_ref().map(|s| s.code.as_str())
    }

    /// The server's error reply, whole.
    pub fn server_error(&self) -> Option<&ServerError> {
        self.inner.server.as_ref()
    }

    /// The message: the server's own text for a server error reply, otherwise
    /// the client's description.
    pub fn message(&self) -> &str {
        match &self.inner.server {
            Some(s) => &s.message,
            None => &self.inner.message,
        }
    }

    /// Whether this error leaves the connection it came from unusable.
    pub fn closes_connection(&self) -> bool {
        self.inner.kind.closes_connection()
    }

    /// Whether this is a server error reply that proves the command did not
    /// run, so sending it again cannot apply it twice: the server refused it
    /// before executing it. Decided by the reply's code, since kinds are
    /// coarser (`Authentication` holds `NOAUTH`, a refusal, and `WRONGPASS`,
    /// an `AUTH` that ran; `Response` holds `BUSY` and every `ERR`):
    ///
    /// - `LOADING`, `BUSY` (a script or function is running), `MASTERDOWN`:
    ///   the server serves nothing of the kind right now;
    /// - `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`: cluster routing;
    /// - `NOSCRIPT` (`EVALSHA` of an unknown script), `READONLY`, `OOM`,
    ///   `NOAUTH`, `NOPERM`: checks made before execution;
    /// - `ERR max number of clients reached` ([`ErrorKind::MaxConnections`]).
    ///
    /// Any other reply, `ERR` above all, may come from a command that ran
    /// in part: a script or function that wrote and then failed (writes are
    /// not rolled back), or a module command. Scripts turn the refusals of
    /// the commands they call into `ERR` (`ERR ACL failure in script`),
    /// refuse `OOM` only before their first write and `READONLY` (on a
    /// replica) for every write, so these codes stay proofs for `EVAL` and
    /// `FCALL`. A script, function or module that forges one of them
    /// (`redis.error_reply("LOADING ...")`) is taken at its word.
    ///
    /// Errors that are not server replies give `false`: whether their
    /// request ran is told by [`Error::delivery`].
    pub fn proves_not_run(&self) -> bool {
        self.inner.server.as_ref().is_some_and(|s| {
            NOT_RUN_CODES.contains(&s.code.as_str()) || self.inner.kind == ErrorKind::MaxConnections
        })
    }
}

/// The error codes a server refuses a command with before running it; see
/// [`Error::proves_not_run`].
const NOT_RUN_CODES: [&str; 12] = [
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "NOSCRIPT",
    "READONLY",
    "OOM",
    "NOAUTH",
    "NOPERM",
];

/// Where the server starts echoing a command's arguments in an error reply
/// (`ERR unknown command 'X', with args beginning with: 'secret' ...`).
const ECHOED_ARGS: &str = ", with args beginning with:";

/// A server error message as shown by `Display` and `Debug`: the arguments
/// the server echoes are left out, since they may hold a password or user
/// data and error messages end up in logs. [`Error::message`] keeps the
/// whole text.
fn shown(message: &str) -> std::borrow::Cow<'_, str> {
    match message.find(ECHOED_ARGS) {
        Some(at) => format!("{}{ECHOED_ARGS} (left out)", &message[..at]).into(),
        None => message.into(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.server {
            Some(s) if s.message.is_empty() => write!(f, "{}: {}", self.inner.kind, s.code)?,
            Some(s) => write!(f, "{}: {} {}", self.inner.kind, s.code, shown(&s.message))?,
            None => write!(f, "{}: {}", self.inner.kind, self.inner.message)?,
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("delivery", &self.inner.delivery);
        match &self.inner.server {
            Some(s) => d
                .field("code", &s.code)
                .field("message", &shown(&s.message)),
            None => d.field("message", &self.inner.message),
        };
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ProtocolError> for Error {
    fn from(err: ProtocolError) -> Error {
        Error::new(ErrorKind::InvalidResponse, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(line: &str) -> Error {
        Error::from_server(ServerError::from_line(line.as_bytes()))
    }

    #[test]
    fn helpers_say_what_a_caller_can_do() {
        let timeout = Error::new(ErrorKind::Timeout, "late").with_delivery(Delivery::SentNoReply);
        assert!(timeout.is_timeout() && timeout.is_retryable() && timeout.may_have_run());
        assert!(!timeout.is_connection() && !timeout.is_server_error());
        let reset = Error::new(ErrorKind::Connection, "reset");
        assert!(reset.is_connection() && reset.is_retryable() && !reset.may_have_run());
        let auth = Error::new(ErrorKind::Authentication, "bad password");
        assert!(auth.is_connection() && !auth.is_retryable());
        let wrongtype = server("WRONGTYPE Operation against a key holding the wrong kind of value");
        assert!(wrongtype.is_server_error() && !wrongtype.is_retryable());
        let loading = server("LOADING Valkey is loading the dataset in memory");
        assert!(
            loading.is_server_error() && loading.is_retryable(),
            "{:?}",
            loading.kind()
        );
        assert!(server("TRYAGAIN Multiple keys request during rehashing").is_retryable());
    }

    #[test]
    fn server_codes_map_to_kinds() {
        let table = [
            ("ERR unknown command 'FOO'", ErrorKind::Response),
            ("WEIRDCODE something", ErrorKind::Response),
            (
                "ERR max number of clients reached",
                ErrorKind::MaxConnections,
            ),
            ("ERR invalid password", ErrorKind::Authentication),
            (
                "WRONGPASS invalid username-password pair or user is disabled.",
                ErrorKind::Authentication,
            ),
            ("NOAUTH Authentication required.", ErrorKind::Authentication),
            (
                "LOADING Valkey is loading the dataset in memory",
                ErrorKind::BusyLoading,
            ),
            ("NOSCRIPT No matching script.", ErrorKind::NoScript),
            (
                "OOM command not allowed when used memory > 'maxmemory'.",
                ErrorKind::OutOfMemory,
            ),
            (
                "EXECABORT Transaction discarded because of previous errors.",
                ErrorKind::ExecAbort,
            ),
            (
                "READONLY You can't write against a read only replica.",
                ErrorKind::ReadOnly,
            ),
            (
                "NOPERM User x has no permissions to run the 'get' command",
                ErrorKind::NoPermission,
            ),
            (
                "ERR Error loading the extension. Please check the server logs.",
                ErrorKind::Module,
            ),
            ("MOVED 3999 127.0.0.1:6381", ErrorKind::Moved),
            ("ASK 3999 127.0.0.1:6381", ErrorKind::Ask),
            (
                "TRYAGAIN Multiple keys request during rehashing of slot",
                ErrorKind::TryAgain,
            ),
            (
                "CROSSSLOT Keys in request don't hash to the same slot",
                ErrorKind::CrossSlot,
            ),
            ("CLUSTERDOWN The cluster is down", ErrorKind::ClusterDown),
            ("MASTERDOWN Link with MASTER is down", ErrorKind::MasterDown),
        ];
        for (line, kind) in table {
            let err = server(line);
            assert_eq!(err.kind(), kind, "{line}");
            assert_eq!(err.delivery(), Delivery::Replied);
            let (code, message) = line.split_once(' ').unwrap();
            assert_eq!(err.code(), Some(code));
            assert_eq!(err.message(), message);
        }
    }

    #[test]
    fn refusals_before_execution_prove_not_run() {
        // Reply lines as valkey-server 9.1 sends them.
        let refused = [
            "LOADING Valkey is loading the dataset in memory",
            "BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            "MOVED 3999 127.0.0.1:6381",
            "ASK 3999 127.0.0.1:6381",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "CLUSTERDOWN The cluster is down",
            "NOSCRIPT No matching script.",
            "READONLY You can't write against a read only replica.",
            "OOM command not allowed when used memory > 'maxmemory'.",
            // A script refuses OOM only before its first write.
            "OOM command not allowed when used memory > 'maxmemory'. script: on @user_script:1.",
            "NOAUTH Authentication required.",
            "NOPERM User ro has no permissions to run the 'incr' command",
            "ERR max number of clients reached",
        ];
        for line in refused {
            assert!(server(line).proves_not_run(), "{line}");
        }
        // Not proofs: the command may have run, or the code is not on the
        // list (then the conservative answer is "may have run").
        let may_have_run = [
            // What an EVAL that wrote and then failed answers.
            "ERR boom",
            "ERR user_script:1: oops script: on @user_script:1.",
            "ERR ACL failure in script: No permissions to access a key script: on @user_script:1.",
            "ERR Wrong number of args calling command from script script: on @user_script:1.",
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            "ERR wrong number of arguments for 'incr' command",
            // RESTORE's own answer; only the exact code BUSY is a refusal.
            "BUSYKEY Target key name already exists.",
            "EXECABORT Transaction discarded because of previous errors.",
            "WRONGPASS invalid username-password pair or user is disabled.",
            "NOREPLICAS Not enough good replicas to write.",
            "CROSSSLOT Keys in request don't hash to the same slot",
        ];
        for line in may_have_run {
            assert!(!server(line).proves_not_run(), "{line}");
        }
        // Not a server reply: the delivery state tells instead.
        let lost = Error::new(ErrorKind::Connection, "reset").with_delivery(Delivery::NotSent);
        assert!(!lost.proves_not_run());
        assert!(!Error::new(ErrorKind::BusyLoading, "no code").proves_not_run());
    }

    #[test]
    fn families_and_coverage() {
        assert_eq!(ErrorKind::BusyLoading.family(), ErrorFamily::Connection);
        assert_eq!(ErrorKind::Authentication.family(), ErrorFamily::Connection);
        assert_eq!(ErrorKind::Moved.family(), ErrorFamily::Response);
        assert_eq!(ErrorKind::InvalidResponse.family(), ErrorFamily::ClientSide);
        assert!(ErrorKind::Connection.covers(ErrorKind::BusyLoading));
        assert!(ErrorKind::Connection.covers(ErrorKind::Authentication));
        assert!(!ErrorKind::Connection.covers(ErrorKind::Timeout));
        assert!(!ErrorKind::BusyLoading.covers(ErrorKind::Connection));
        assert!(ErrorKind::Response.covers(ErrorKind::ReadOnly));
        assert!(!ErrorKind::ReadOnly.covers(ErrorKind::Response));
        assert!(!ErrorKind::Timeout.covers(ErrorKind::Connection));
    }

    #[test]
    fn echoed_arguments_are_left_out_of_display_and_debug() {
        let err = server("ERR unknown command 'NOSUCH', with args beginning with: 'hunter2' 'x' ");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("unknown command 'NOSUCH'"), "{shown}");
        }
        assert!(
            err.message().contains("hunter2"),
            "message() keeps the whole text"
        );
    }

    #[test]
    fn display_keeps_code_and_message() {
        let err = server("WRONGPASS invalid username-password pair");
        assert_eq!(
            err.to_string(),
            "authentication failed: WRONGPASS invalid username-password pair"
        );
        let io = Error::io("connect to 127.0.0.1:1", std::io::Error::other("refused"));
        assert_eq!(io.kind(), ErrorKind::Connection);
        assert!(io.to_string().contains("refused"));
        assert_eq!(
            std::mem::size_of::<Result<()>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn setup_errors_have_their_own_kinds_and_say_each_thing_once() {
        let url = crate::ConnectionConfig::from_url("http://127.0.0.1").unwrap_err();
        assert_eq!(url.kind(), ErrorKind::InvalidUrl);
        assert_eq!(
            url.to_string(),
            "invalid connection URL: unsupported scheme `http` (expected valkey, valkeys, redis, \
             rediss or unix)"
        );
        let tls = crate::TlsConfig::new()
            .ca_cert_pem("no certificate here")
            .rustls_config()
            .unwrap_err();
        assert_eq!(tls.kind(), ErrorKind::Tls);
        assert_eq!(
            tls.to_string(),
            "TLS setup failed: CA certificate: no certificate found in the PEM text"
        );
        for kind in [ErrorKind::Config, ErrorKind::InvalidUrl, ErrorKind::Tls] {
            assert_eq!(kind.family(), ErrorFamily::ClientSide);
            let err = Error::new(kind, "x");
            assert!(!err.is_retryable() && !err.is_connection() && !err.closes_connection());
        }
    }
}
