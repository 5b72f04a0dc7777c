#!/usr/bin/env bash
# Top functions of our client under callgrind, from the files that
# scripts/bench-compare.sh leaves in target/bench (sequential GET and the
# 64-task mix). Usage: scripts/bench-profile.sh [N]   (default top 15)
set -euo pipefail
cd "$(dirname "$0")/.."
top=${1:-15}
for f in target/bench/callgrind.valkey.seq.*.out target/bench/callgrind.valkey.tasks.*.out; do
    case "$f" in *.0.out) continue ;; esac
    [ -e "$f" ] || { echo "no $f: run scripts/bench-compare.sh first"; exit 1; }
    for mode in yes no; do
        echo "== $f, $( [ $mode = yes ] && echo inclusive || echo self ), top $top"
        callgrind_annotate --inclusive=$mode "$f" 2>/dev/null \
            | grep -E '^ *[0-9,]+ \(' | head -n "$top" \
            | sed -E 's/\[[^]]*valkey-bench\]//; s/^/  /' | cut -c1-200
    done
done
