#!/usr/bin/env bash
# Builds every example of valkey-client once, then runs each one, stopping at
# the first failure. Each example checks its own results and exits non-zero
# on a wrong one; each run is bounded (EXAMPLE_TIMEOUT seconds, default 120).
#
# Without VALKEY_URL (VALKEY_CLUSTER_URL, VALKEY_TLS_URL) the examples start
# their servers from valkey-testkit; the tls example needs Debian's stunnel4,
# installed here when missing and apt-get can be used.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/apt-ensure.sh
command -v stunnel >/dev/null || apt_ensure stunnel4:stunnel4

# Install (or find) valkey-server once, before the examples need it.
cargo run -q -p valkey-testkit --bin valkey-testkit-install

cargo build -p valkey-client --examples

timeout_s="${EXAMPLE_TIMEOUT:-120}"
# Every examples/*.rs is an example (support/ is a module they include).
examples=()
for file in valkey-client/examples/*.rs; do
    examples+=("$(basename "${file}" .rs)")
done
for example in "${examples[@]}"; do
    echo "=== example ${example}"
    start=$(date +%s)
    if ! timeout "${timeout_s}" "target/debug/examples/${example}"; then
        echo "=== example ${example} FAILED (or exceeded ${timeout_s} s)" >&2
        exit 1
    fi
    echo "=== example ${example} passed in $(($(date +%s) - start)) s"
done
echo "=== all ${#examples[@]} examples passed"
