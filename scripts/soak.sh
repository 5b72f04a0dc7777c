#!/usr/bin/env bash
# The soak: 32 tasks of mixed traffic through the test kit's fault proxy,
# with a random fault every 0.3 to 1.5 s, for SOAK_SECS seconds (default
# 300) after a warm-up round; then open sockets, live tasks and allocated
# bytes must be back to the baseline and no call may have outlived its
# deadline by more than 50 ms. `scripts/test.sh` runs the same test for 15 s.
# Last results: docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -p valkey-testkit --bin valkey-testkit-install >/dev/null
SOAK_SECS="${SOAK_SECS:-300}" cargo test -q -p valkey-client --test soak -- --nocapture
