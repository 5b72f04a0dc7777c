#!/usr/bin/env bash
# A profile of one sequential GET round trip, client side, beside
# redis-benchmark -c 1: system calls per GET (strace -c), client CPU time
# per GET (perf stat task-clock) and wall time per GET. The server runs on
# core 0, every client on core 1, as in scripts/bench-compare.sh.
#
# Usage: scripts/bench-round-trip.sh [GETS]   (default 20000)
# Each client's startup is measured with zero GETs and subtracted.
set -euo pipefail
cd "$(dirname "$0")/.."
ops=${1:-20000}

source scripts/apt-ensure.sh
apt_ensure redis-benchmark:redis-tools strace:strace perf:linux-perf

cargo build --release -q -p valkey-bench
bench=target/release/valkey-bench
server=$(cargo run --release -q -p valkey-testkit --bin valkey-testkit-install)
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
taskset -c 0 "$server" --port "$port" --save '' --appendonly no --dir "$dir" >"$dir/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done
# The key redis-benchmark reads without -r, with the workloads' 64-byte value.
redis-cli -p "$port" set key:__rand_int__ "$(printf 'x%.0s' $(seq 64))" >/dev/null

# The command of one client doing $1 GETs.
client_cmd() {
    local who=$1 n=$2
    case $who in
        redis-benchmark) echo "redis-benchmark -p $port -t get -c 1 -d 64 -q -n $((n > 0 ? n : 1))" ;;
        *) echo "$bench instr --client $who --port $port --ops $n" ;;
    esac
}

# syscalls, CPU microseconds, wall microseconds of one run.
measure() {
    local cmd=$1 calls cpu start end
    calls=$(strace -f -c -o "$dir/strace" taskset -c 1 $cmd >/dev/null 2>&1 \
        && awk '/ total$/ {print $4}' "$dir/strace")
    start=$(date +%s%N)
    cpu=$(perf stat -x, -e task-clock taskset -c 1 $cmd 2>&1 >/dev/null | awk -F, '/task-clock/ {print $1 * 1000}')
    end=$(date +%s%N)
    echo "$calls $cpu $(( (end - start) / 1000 ))"
}

printf '%-34s %12s %14s %14s\n' "client ($ops GETs)" "syscalls/GET" "CPU us/GET" "wall us/GET"
for who in redis-benchmark valkey connection bare-tokio bare-std redis; do
    if [ "$who" = redis ] && ! $bench instr --client redis --port "$port" --ops 0 >/dev/null 2>&1; then
        continue # built without the peers
    fi
    read -r c1 u1 w1 <<<"$(measure "$(client_cmd "$who" "$ops")")"
    read -r c0 u0 w0 <<<"$(measure "$(client_cmd "$who" 0)")"
    awk -v who="$who" -v n="$ops" -v c1="$c1" -v c0="$c0" -v u1="$u1" -v u0="$u0" -v w1="$w1" -v w0="$w0" \
        'BEGIN { printf "%-34s %12.2f %14.1f %14.1f\n", who, (c1 - c0) / n, (u1 - u0) / n, (w1 - w0) / n }'
done
