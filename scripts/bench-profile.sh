#!/usr/bin/env bash
# Top functions of our client under callgrind, from the files that
# scripts/bench-compare.sh leaves in target/bench (the Valkey client on
# sequential GET and on the 64-task mix, Connection::pipeline on pipelined
# SET; the run with the most operations of each).
# Usage: scripts/bench-profile.sh [N]   (default top 15)
# The inclusive list leaves out the frames every run has (process start,
# main, the runtime's block_on) so that it starts at the work itself.
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-15}
startup='PROGRAM TOTALS|ld-linux|below main|libc_start|lang_start|backtrace|:main |valkey_bench::main|Runtime::block_on|CurrentThread::block_on|context::set_scheduler|scoped::Scoped|BlockOn|enter_runtime|LocalKey|with_current'
for run in valkey.seq valkey.tasks connection.pipe; do
    f=$(ls -v target/bench/callgrind."$run".*.out 2>/dev/null | grep -v '\.0\.out$' | tail -n 1 || true)
    [ -n "$f" ] || { echo "no callgrind file for $run: run scripts/bench-compare.sh first"; exit 1; }
    for mode in yes no; do
        echo "== $f, $( [ $mode = yes ] && echo inclusive || echo self ), top $top"
        callgrind_annotate --inclusive=$mode "$f" 2>/dev/null \
            | grep -E '^ *[0-9,]+ \(' | grep -Ev "$startup" | head -n "$top" \
            | sed -E 's#/root/.cargo/registry/src/[^/]+/##; s#/rustc/[0-9a-f]+/##; s/ \[[^]]*\]$//' | cut -c1-220 || true
    done
done
