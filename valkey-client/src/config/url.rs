//! Parsing connection URLs.
//!
//! Every problem is an error that names it; nothing in a URL is silently
//! ignored, and the password never appears in an error message.

use std::borrow::Cow;

use super::{ConnectionConfig, DEFAULT_PORT, Protocol, TlsConfig};
use crate::error::{Error, ErrorKind, Result};

fn invalid(problem: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidUrl, problem.to_string())
}

fn decode(part: &str, what: &str) -> Result<String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid(format!("the {what} is not valid percent-encoded UTF-8")))
}

pub(super) fn parse(input: &str) -> Result<ConnectionConfig> {
    // Credentials may hold characters that make `url` reject the whole URL;
    // its error then echoes nothing of ours, so the password stays private.
    let url = url::Url::parse(input).map_err(invalid)?;
    let tls = match url.scheme() {
        "valkey" | "redis" => false,
        "valkeys" | "rediss" => true,
        "unix" | "valkey+unix" | "redis+unix" => return parse_unix(&url),
        other => {
            return Err(invalid(format!(
                "unsupported scheme `{other}` (expected valkey, valkeys, redis, rediss or unix)"
            )));
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(invalid("no host")),
    };
    let port = url.port().unwrap_or(DEFAULT_PORT);
    let mut config = ConnectionConfig::tcp(host, port);
    if tls {
        config = config.tls(TlsConfig::new());
    }
    config = credentials(config, url.username(), url.password())?;
    config.db = parse_db_path(url.path())?;
    apply_query(config, &url, false)
}

fn credentials(
    mut config: ConnectionConfig,
    user: &str,
    password: Option<&str>,
) -> Result<ConnectionConfig> {
    if !user.is_empty() {
        config = config.username(decode(user, "user name")?);
    }
    if let Some(password) = password {
        config = config.password(decode(password, "password")?);
    }
    Ok(config)
}

fn parse_db_path(path: &str) -> Result<i64> {
    let db = path.trim_start_matches('/');
    if db.is_empty() {
        return Ok(0);
    }
    parse_db(db)
}

fn parse_db(db: &str) -> Result<i64> {
    match db.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(invalid(format!(
            "database `{db}` is not a non-negative integer"
        ))),
    }
}

#[cfg(not(unix))]
fn parse_unix(_url: &url::Url) -> Result<ConnectionConfig> {
    Err(invalid(
        "unix:// URLs name a Unix domain socket, which this platform does not have",
    ))
}

#[cfg(unix)]
fn parse_unix(url: &url::Url) -> Result<ConnectionConfig> {
    let path = url.path();
    if path.is_empty() || path == "/" {
        return Err(invalid("no socket path (expected unix:///path/to/socket)"));
    }
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(invalid(
            "a unix URL takes no host (write three slashes: unix:///path/to/socket)",
        ));
    }
    let path = decode(path, "socket path")?;
    let config = ConnectionConfig::unix(path);
    let config = credentials(config, url.username(), url.password())?;
    apply_query(config, url, true)
}

fn apply_query(
    mut config: ConnectionConfig,
    url: &url::Url,
    unix: bool,
) -> Result<ConnectionConfig> {
    for (key, value) in url.query_pairs() {
        let value: Cow<'_, str> = value;
        match key.as_ref() {
            "protocol" | "resp" => {
                config.protocol = match value.as_ref() {
                    "2" | "resp2" => Protocol::Resp2,
                    "3" | "resp3" => Protocol::Resp3,
                    other => {
                        return Err(invalid(format!("protocol `{other}` is not 2 or 3")));
                    }
                }
            }
            "client_name" | "name" => config.client_name = Some(value.into_owned()),
            "db" if unix => config.db = parse_db(&value)?,
            "user" if unix => config.username = Some(value.into_owned()),
            "password" if unix => config = config.password(value.into_owned()),
            "db" => {
                return Err(invalid(
                    "give the database in the path (valkey://host/2), not as `db=`",
                ));
            }
            other => return Err(invalid(format!("unknown query parameter `{other}`"))),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Addr;

    fn ok(url: &str) -> ConnectionConfig {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn err(url: &str) -> String {
        match parse(url) {
            Ok(c) => panic!("{url} parsed as {c:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidUrl);
                e.to_string()
            }
        }
    }

    #[test]
    fn tcp_urls() {
        let c = ok("valkey://localhost");
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "localhost".into(),
                port: 6379
            }
        );
        assert!(c.tls.is_none());
        assert_eq!(c.db, 0);
        assert_eq!(c.protocol, Protocol::Resp3);

        let c = ok("redis://app:p%40ss@10.0.0.1:7000/3?protocol=2&client_name=worker");
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "10.0.0.1".into(),
                port: 7000
            }
        );
        assert_eq!(c.username.as_deref(), Some("app"));
        assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("p@ss"));
        assert_eq!(c.db, 3);
        assert_eq!(c.protocol, Protocol::Resp2);
        assert_eq!(c.client_name.as_deref(), Some("worker"));

        let c = ok("valkey://:only-pass@[::1]:6380");
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "::1".into(),
                port: 6380
            }
        );
        assert_eq!(c.username, None);
        assert!(c.password.is_some());
    }

    #[test]
    fn tls_schemes() {
        assert!(ok("valkeys://host").tls.is_some());
        assert!(ok("rediss://host:6390/1").tls.is_some());
    }

    #[cfg(unix)]
    #[test]
    fn unix_urls() {
        let c = ok("unix:///tmp/valkey.sock?db=4&password=pw");
        assert_eq!(c.addr, Addr::Unix("/tmp/valkey.sock".into()));
        assert_eq!(c.db, 4);
        assert!(c.password.is_some());
        let c = ok("valkey+unix:///var/run/v.sock");
        assert_eq!(c.addr, Addr::Unix("/var/run/v.sock".into()));
    }

    #[test]
    fn malformed_urls_name_the_problem() {
        assert!(err("http://host").contains("unsupported scheme `http`"));
        assert!(err("valkey://host/abc").contains("database `abc`"));
        assert!(err("valkey://host/-1").contains("database `-1`"));
        assert!(err("valkey://host:99999").contains("invalid"));
        assert!(err("valkey://host?bogus=1").contains("unknown query parameter `bogus`"));
        assert!(err("valkey://host?protocol=4").contains("protocol `4`"));
        assert!(err("valkey://host?db=2").contains("in the path"));
        #[cfg(unix)]
        {
            assert!(err("unix://").contains("no socket path"));
            assert!(err("unix://host/sock").contains("takes no host"));
        }
        #[cfg(not(unix))]
        assert!(err("unix:///tmp/valkey.sock").contains("does not have"));
        assert!(err("not a url").contains("invalid connection URL"));
        assert!(err("valkey://").contains("no host"));
    }

    #[test]
    fn errors_and_debug_never_show_the_password() {
        let c = ok("valkey://user:hunter2@host/1");
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = err("valkey://user:hunter2@host/xyz");
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("valkey://user:hunter2@host?nope=1");
        assert!(!e.contains("hunter2"), "{e}");
        let e = err("valkey://user:hunter2@ho st");
        assert!(!e.contains("hunter2"), "{e}");
    }
}
