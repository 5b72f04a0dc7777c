//! Rust names for commands, arguments and generated types, and the reply
//! type each command method declares.

/// Rust keywords that argument or command names may collide with.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while", "gen", "box", "yield", "try", "macro", "final", "override", "priv", "typeof",
    "unsized", "virtual", "abstract", "become", "do",
];

/// Method names that say more than the command name would (`TYPE` and
/// `MOVE` are keywords).
const METHOD_RENAMES: &[(&str, &str)] = &[("type", "key_type"), ("move", "move_key")];

/// `comparison-value` -> `comparison_value`; keywords get a trailing `_`.
pub fn snake(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// `client|no-evict` -> `ClientNoEvict`.
pub fn pascal(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// The method of a command: `client|list` -> `client_list`.
pub fn method_name(command: &str) -> String {
    METHOD_RENAMES
        .iter()
        .find(|(from, _)| *from == command)
        .map_or_else(|| snake(command), |(_, to)| to.to_string())
}

/// The reply type a command's method declares. `None`: the caller names
/// it (a value of the caller's type: `GET`, `LRANGE`, `HGETALL`, ...).
pub fn declared_reply(command: &str) -> Option<&'static str> {
    REPLIES
        .iter()
        .find(|(_, names)| names.split_whitespace().any(|n| n == command))
        .map(|(ty, _)| *ty)
}

/// Commands whose options change the shape of the reply (`SET ... GET`
/// returns the old value, `ZADD ... INCR` a score): their `_with` method
/// lets the caller name the type.
pub fn options_change_reply(command: &str) -> bool {
    ["set", "zadd", "lpos", "client|kill", "object|freq"].contains(&command)
}

/// Commands with no method: internal to the server, or documented
/// without the arguments they take.
pub const NOT_GENERATED: &[(&str, &str)] = &[(
    "cluster|syncslots",
    "used between nodes during an atomic slot migration; its docs list no arguments",
)];

/// Reply types by command, from the command reference's reply sections.
/// The generated every-command test checks each against the server, in
/// RESP2 and RESP3.
#[rustfmt::skip]
const REPLIES: &[(&str, &str)] = &[
    ("i64", "hset zadd delifeq append bitcount bitop bitpos dbsize decr decrby del exists expire expireat \
             expiretime geoadd hdel hexists hincrby hlen hsetnx hstrlen incr incrby linsert \
             llen lpush lpushx lrem move msetnx persist pexpire pexpireat pexpiretime pfadd \
             pfcount pttl publish rpush rpushx sadd scard sdiffstore sinterstore sintercard \
             sismember smove srem strlen sunionstore touch ttl unlink xack xdel xlen xtrim \
             zcard zcount zdiffstore zinterstore zlexcount zrangestore zremrangebyrank \
             zremrangebyscore zremrangebylex zunionstore zrem zintercard setrange setbit getbit \
             lastsave wait spublish client|id client|unblock cluster|countkeysinslot \
             cluster|keyslot cluster|count-failure-reports pubsub|numpat copy renamenx \
             hsetex msetex setnx geosearchstore georadius_store latency|reset \
             acl|deluser commandlog|len slowlog|len command|count exists xgroup|createconsumer \
             xgroup|delconsumer xgroup|destroy cluster|count-failure-reports \
             "),
    ("()", "set mset flushall flushdb rename lset ltrim hmset setex psetex restore swapdb \
            save config|set config|resetstat config|rewrite client|pause client|unpause \
            script|flush function|flush function|delete function|restore xgroup|setid \
            xgroup|create pfmerge acl|setuser acl|save acl|load cluster|meet cluster|forget \
            cluster|addslots cluster|addslotsrange cluster|delslots cluster|delslotsrange \
            cluster|flushslots cluster|reset cluster|saveconfig cluster|set-config-epoch \
            cluster|setslot cluster|replicate cluster|failover  \
            replicaof slaveof memory|purge module|load module|loadex module|unload \
            slowlog|reset commandlog|reset failover \
            "),
    ("Option<i64>", "object|refcount object|idletime object|freq memory|usage"),
    ("f64", "incrbyfloat hincrbyfloat zincrby"),
    ("Option<f64>", "zscore geodist"),
    ("String", "type ping client|info client|list info lolwut acl|whoami acl|genpass \
               cluster|info cluster|nodes cluster|myid cluster|myshardid script|load \
               function|load memory|doctor latency|doctor"),
];
