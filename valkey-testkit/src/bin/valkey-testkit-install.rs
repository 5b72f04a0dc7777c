//! Finds or installs `valkey-server` (see `valkey_testkit::binary`) and prints its path.
//! CI runs it once to warm the cache.

fn main() -> std::process::ExitCode {
    match valkey_testkit::ensure_installed() {
        Ok(path) => {
            println!("{}", path.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("valkey-testkit-install: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
