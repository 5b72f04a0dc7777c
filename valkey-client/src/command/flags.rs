//! Bitsets for command flags and key-spec flags, as `COMMAND INFO` reports them.

macro_rules! bitset {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) { $( $(#[$fmeta:meta])* $flag:ident = $bit:expr, $text:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name($int);

        impl $name {
            /// No flag set.
            pub const EMPTY: $name = $name(0);
            $( $(#[$fmeta])* pub const $flag: $name = $name(1 << $bit); )*
            /// Every flag with the server's spelling of it.
            pub const ALL: &'static [($name, &'static str)] = &[$( ($name::$flag, $text), )*];

            /// Both sets together (usable in constants).
            pub const fn union(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }

            /// Whether every flag of `other` is set here.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no flag is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The raw bits.
            pub const fn bits(self) -> $int {
                self.0
            }

            /// The server's names of the flags set, in declaration order.
            pub fn names(self) -> impl Iterator<Item = &'static str> {
                Self::ALL
                    .iter()
                    .filter(move |(f, _)| self.contains(*f))
                    .map(|(_, n)| *n)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_set().entries(self.names()).finish()
            }
        }
    };
}

bitset! {
    /// The flags of a command (`COMMAND INFO` element 3). `generate` fails on a
    /// flag missing here, so a new server flag is noticed.
    CommandFlags(u32) {
        /// May modify the dataset.
        WRITE = 0, "write";
        /// Only reads the dataset: always safe to repeat.
        READONLY = 1, "readonly";
        /// Refused when the server is over its `maxmemory`.
        DENYOOM = 2, "denyoom";
        /// Implemented by a module.
        MODULE = 3, "module";
        /// Administrative: needs the `@admin` ACL category.
        ADMIN = 4, "admin";
        /// Publish/subscribe related.
        PUBSUB = 5, "pubsub";
        /// Not allowed inside scripts.
        NOSCRIPT = 6, "noscript";
        /// May block the client (e.g. `BLPOP`).
        BLOCKING = 7, "blocking";
        /// Allowed while the server is loading its dataset.
        LOADING = 8, "loading";
        /// Allowed on a replica with a stale dataset.
        STALE = 9, "stale";
        /// Not shown to `MONITOR`.
        SKIP_MONITOR = 10, "skip_monitor";
        /// Not logged in the slow log (older servers' name).
        SKIP_SLOWLOG = 11, "skip_slowlog";
        /// Not logged in the command log (Valkey 8.1+).
        SKIP_COMMANDLOG = 12, "skip_commandlog";
        /// Accepted after `ASKING` on an importing cluster node.
        ASKING = 13, "asking";
        /// Constant or O(log N) time.
        FAST = 14, "fast";
        /// Allowed before authentication.
        NO_AUTH = 15, "no_auth";
        /// May replicate although not a write (e.g. `PUBLISH` in scripts).
        MAY_REPLICATE = 16, "may_replicate";
        /// May run with no key at all (e.g. `EVAL` with 0 keys).
        NO_MANDATORY_KEYS = 17, "no_mandatory_keys";
        /// Not allowed inside `MULTI`.
        NO_MULTI = 18, "no_multi";
        /// Key positions depend on the arguments: use the key specs.
        MOVABLEKEYS = 19, "movablekeys";
        /// Allowed while a script or function is busy.
        ALLOW_BUSY = 20, "allow_busy";
        /// Refused while the server loads a dataset asynchronously.
        NO_ASYNC_LOADING = 21, "no_async_loading";
    }
}

bitset! {
    /// The flags of one key specification: how the command accesses those keys.
    KeySpecFlags(u16) {
        /// Read-only access.
        RO = 0, "RO";
        /// Read-write access.
        RW = 1, "RW";
        /// Overwrite: the old value is not read.
        OW = 2, "OW";
        /// Removes the key.
        RM = 3, "RM";
        /// Returns, copies or uses the user data of the key.
        ACCESS = 4, "access";
        /// Updates the value.
        UPDATE = 5, "update";
        /// Adds data without changing existing data.
        INSERT = 6, "insert";
        /// Deletes data from the value.
        DELETE = 7, "delete";
        /// The argument is not a key name (e.g. a channel), but routes like one.
        NOT_KEY = 8, "not_key";
        /// The spec may not find every key.
        INCOMPLETE = 9, "incomplete";
        /// The access flags depend on the arguments.
        VARIABLE_FLAGS = 10, "variable_flags";
    }
}
