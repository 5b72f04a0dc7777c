//! Regenerates valkey-client's command table from a real valkey-server.
//!
//! - `capture`: starts valkey-server through the test kit, runs `COMMAND INFO`
//!   and `COMMAND DOCS` over RESP3 and writes `valkey-client/data/commands.json`;
//! - `generate`: reads that JSON and writes
//!   `valkey-client/src/command/table_generated.rs`.
//!
//! `scripts/regenerate-command-table.sh` runs both.

mod capture;
mod generate;
mod methods;

use std::path::PathBuf;
use std::process::ExitCode;

/// The workspace root, found from this crate's manifest directory.
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the capture is stored.
fn json_path() -> PathBuf {
    workspace_root().join("valkey-client/data/commands.json")
}

/// Where the generated table goes.
fn table_path() -> PathBuf {
    workspace_root().join("valkey-client/src/command/table_generated.rs")
}

fn run(mode: &str) -> Result<(), String> {
    match mode {
        "capture" => {
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            let doc = runtime.block_on(capture::capture())?;
            let mut text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
            text.push('\n');
            std::fs::write(json_path(), text)
                .map_err(|e| format!("{}: {e}", json_path().display()))?;
            println!("wrote {}", json_path().display());
            Ok(())
        }
        "generate" => {
            let text = std::fs::read_to_string(json_path())
                .map_err(|e| format!("{}: {e}", json_path().display()))?;
            let code = generate::generate_formatted(&text)?;
            std::fs::write(table_path(), code)
                .map_err(|e| format!("{}: {e}", table_path().display()))?;
            println!("wrote {}", table_path().display());
            let generated = methods::generate(&text)?;
            let root = workspace_root();
            for (path, code) in [
                (
                    "valkey-client/src/commands/generated.rs",
                    generate::rustfmt(&generated.module)?,
                ),
                (
                    "valkey-client/tests/every_command.rs",
                    generate::rustfmt(&generated.test)?,
                ),
            ] {
                std::fs::write(root.join(path), code).map_err(|e| format!("{path}: {e}"))?;
                println!("wrote {path}");
            }
            print!("{}", generated.report);
            Ok(())
        }
        other => Err(format!(
            "unknown mode {other:?}: use `capture` or `generate`"
        )),
    }
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    match run(&mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("command-table: {e}");
            ExitCode::FAILURE
        }
    }
}
