//! Feeds arbitrary strings to the connection URL parser
//! (`ConnectionConfig::from_url` and `str::parse`), checking that it never
//! panics, that both entry points agree, that every error is an `InvalidUrl` error,
//! and, for every URL the `url` crate parses too:
//!
//! - an accepted URL gives the address, port, TLS, database, user and
//!   password that the URL names (the scheme's rules, restated here from the
//!   `url` crate's reading of the URL), and its address and database survive
//!   a round trip through `valkey://{addr}/{db}`;
//! - the password never shows: the config's `Debug` output is the same
//!   whatever the password, so it cannot contain it, and no error message
//!   holds it unless the same URL without the password gives an error that
//!   holds the same text (a database or query value that happens to equal it).
#![no_main]

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use valkey_client::{Addr, ConnectionConfig, ErrorKind, Protocol};

fn pct_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// The last value of query parameter `key`.
fn last_query(url: &url::Url, keys: &[&str]) -> Option<String> {
    url.query_pairs()
        .filter(|(k, _)| keys.contains(&k.as_ref()))
        .map(|(_, v)| v.into_owned())
        .last()
}

/// Every password the URL gives, decoded: the one in the user info and, for
/// a Unix socket, the `password` query parameters.
fn passwords(url: &url::Url, unix: bool) -> Vec<String> {
    let mut out: Vec<String> = url.password().and_then(pct_decode).into_iter().collect();
    if unix {
        out.extend(
            url.query_pairs()
                .filter(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned()),
        );
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The same URL with every password removed (the user info one dropped, the
/// query ones emptied).
fn without_passwords(url: &url::Url) -> Option<String> {
    let mut url = url.clone();
    if url.password().is_some() {
        url.set_password(None).ok()?;
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { String::new() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Some(url.to_string())
}

fn error_text(e: &valkey_client::Error) -> String {
    format!("{e} / {e:?}")
}

fn check_accepted(s: &str, url: &url::Url, config: &ConnectionConfig) {
    let scheme = url.scheme();
    let unix = matches!(scheme, "unix" | "valkey+unix" | "redis+unix");
    assert!(
        unix || matches!(scheme, "valkey" | "redis" | "valkeys" | "rediss"),
        "{s:?}: accepted scheme {scheme}"
    );
    assert_eq!(
        config.tls_config().is_some(),
        matches!(scheme, "valkeys" | "rediss"),
        "{s:?}: TLS"
    );
    assert!(config.db_index() >= 0, "{s:?}: negative database");

    let userinfo_user = pct_decode(url.username()).filter(|u| !u.is_empty());
    if unix {
        let path = pct_decode(url.path()).expect("accepted path decodes");
        assert_eq!(config.addr(), &Addr::Unix(PathBuf::from(path)), "{s:?}");
        let db = last_query(url, &["db"]).map_or(0, |d| d.parse::<i64>().expect("accepted db"));
        assert_eq!(config.db_index(), db, "{s:?}: database");
        let user = last_query(url, &["user"]).or(userinfo_user);
        assert_eq!(config.user(), user.as_deref(), "{s:?}: user");
        assert_eq!(
            config.has_password(),
            url.password().is_some() || url.query_pairs().any(|(k, _)| k == "password"),
            "{s:?}: password"
        );
    } else {
        let Addr::Tcp { host, port } = config.addr() else {
            panic!("{s:?}: a TCP scheme gave {:?}", config.addr());
        };
        assert_eq!(*port, url.port().unwrap_or(6379), "{s:?}: port");
        match url.host() {
            Some(url::Host::Domain(d)) => assert_eq!(host, d, "{s:?}: host"),
            Some(url::Host::Ipv4(ip)) => {
                assert_eq!(host.parse::<Ipv4Addr>().ok(), Some(ip), "{s:?}: host")
            }
            Some(url::Host::Ipv6(ip)) => {
                assert_eq!(host.parse::<Ipv6Addr>().ok(), Some(ip), "{s:?}: host")
            }
            None => panic!("{s:?}: accepted without a host"),
        }
        let db_text = url.path().trim_start_matches('/');
        let db = if db_text.is_empty() {
            0
        } else {
            db_text.parse::<i64>().expect("accepted db path is a number")
        };
        assert_eq!(config.db_index(), db, "{s:?}: database");
        assert_eq!(config.user(), userinfo_user.as_deref(), "{s:?}: user");
        assert_eq!(config.has_password(), url.password().is_some(), "{s:?}");

        // The address and database, written back as a URL, parse to the same.
        let again = format!("valkey://{}/{}", config.addr(), config.db_index());
        match ConnectionConfig::from_url(&again) {
            Ok(c) => {
                assert_eq!(c.addr(), config.addr(), "{s:?} -> {again:?}");
                assert_eq!(c.db_index(), config.db_index(), "{s:?} -> {again:?}");
            }
            Err(e) => panic!("{s:?} -> {again:?}: {e}"),
        }
    }

    let protocol = last_query(url, &["protocol", "resp"]).map_or(Protocol::Resp3, |p| {
        match p.as_str() {
            "2" | "resp2" => Protocol::Resp2,
            "3" | "resp3" => Protocol::Resp3,
            other => panic!("{s:?}: accepted protocol {other:?}"),
        }
    });
    assert_eq!(config.protocol_version(), protocol, "{s:?}: protocol");

    // Debug output does not depend on the password, so it cannot show it.
    let shown = format!("{config:?}");
    if config.has_password() {
        let other = format!("{:?}", config.clone().password("a different password"));
        assert_eq!(shown, other, "{s:?}: Debug depends on the password");
        for p in passwords(url, unix) {
            assert!(
                other.contains(&p) || !shown.contains(&p),
                "{s:?}: Debug shows the password {p:?}: {shown}"
            );
        }
    }
}

fn check_refused(s: &str, url: &url::Url, e: &valkey_client::Error) {
    let unix = matches!(url.scheme(), "unix" | "valkey+unix" | "redis+unix");
    let text = error_text(e);
    for p in passwords(url, unix) {
        if !text.contains(&p) {
            continue;
        }
        // Allowed only when the same URL without its passwords fails with a
        // message holding the same text (from another part of the URL).
        let Some(stripped) = without_passwords(url) else {
            continue;
        };
        let elsewhere = ConnectionConfig::from_url(&stripped)
            .err()
            .is_some_and(|e2| error_text(&e2).contains(&p));
        assert!(
            elsewhere,
            "{s:?}: the error shows the password {p:?}: {text} (without it: {stripped:?})"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let result = ConnectionConfig::from_url(s);
    let parsed = s.parse::<ConnectionConfig>();
    match (&result, &parsed) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{s:?}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{s:?}"),
        _ => panic!("{s:?}: from_url and parse disagree"),
    }
    if let Err(e) = &result {
        assert_eq!(e.kind(), ErrorKind::InvalidUrl, "{s:?}: {e}");
    }
    // The URL as the `url` crate reads it, to know what the config must hold.
    let Ok(url) = url::Url::parse(s) else {
        assert!(result.is_err(), "{s:?}: accepted, but `url` refuses it");
        return;
    };
    match &result {
        Ok(config) => check_accepted(s, &url, config),
        Err(e) => check_refused(s, &url, e),
    }
});
