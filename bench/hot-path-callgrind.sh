#!/usr/bin/env bash
# Instructions per message of feedkeeper's hot path (bench/hot-path.ts), counted by callgrind over
# the measured part only: the chunks are built before counting starts and the process exits after
# it stops. Repeatable whatever the machine's load (valgrind counts instructions, not time).
# SCRIPT=read-path counts bench/read-path.ts instead: the same pipeline behind a real socket (the
# sending server is a child process, not counted).
#
#   npx tsc -p . && [SCRIPT=read-path] bash bench/hot-path-callgrind.sh [DIST=dist] [MESSAGES=200000]
set -euo pipefail
dist=${1:-dist}
n=${2:-200000}
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install -y valgrind)" >&2; exit 2; }
work=$(mktemp -d); [ -n "${KEEP:-}" ] && echo "work dir $work" >&2
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkfifo "$work/in"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.out" \
  node ${NODE_FLAGS:---single-threaded} "$dist/bench/${SCRIPT:-hot-path}.js" --messages "$n" --pause <"$work/in" 2>"$work/err" >"$work/out" &
vg=$!
exec 3>"$work/in"
wait_for() { until grep -qx "$1" "$work/err"; do kill -0 $vg 2>/dev/null || { cat "$work/err" >&2; exit 1; }; sleep 0.5; done; }
wait_for ready
callgrind_control -i on $vg >/dev/null 2>&1
echo go >&3
wait_for done
callgrind_control -i off $vg >/dev/null 2>&1
echo go >&3
exec 3>&-
wait $vg
ir=$(grep -E '^totals:' "$work/cg.out" | awk '{print $2}')
cat "$work/out"
echo "instructions per message: $((ir / n)) ($ir over $n messages)"
