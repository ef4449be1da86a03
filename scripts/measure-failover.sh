#!/usr/bin/env bash
# Measures the time from SIGKILL of the leader (or, with --isolate, from `fault isolate` of
# the leader) to the next successful put, on a local 3-node cluster of release builds.
# Prints each run and the median.
#   scripts/measure-failover.sh [--isolate] [RUNS]        (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=kill
if [ "${1:-}" = --isolate ]; then mode=isolate; shift; fi
runs=${1:-7}
source scripts/cargo-bins.sh
bins=$(cargo_bins --release -q -p raft-server -p raft-client)
server_bin=$(bin_named "$bins" raft-server)
client_bin=$(bin_named "$bins" raft-client)
dir=$(mktemp -d)
base=$((24000 + RANDOM % 2000))
peers="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
api="127.0.0.1:$((base+1001)),127.0.0.1:$((base+1002)),127.0.0.1:$((base+1003))"
declare -A pids
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
start() { "$server_bin" --id "$1" --peers "$peers" --data-dir "$dir/n$1" --headless 2>>"$dir/log$1" & pids[$1]=$!; }
leader() {
  "$client_bin" --peers "$api" --timeout 2 status --json |
    python3 -c 'import json,sys; l=[n["id"] for n in json.load(sys.stdin) if n.get("role")=="Leader"]; print(l[0] if l else 0)'
}
for i in 1 2 3; do start "$i"; done
times=()
for run in $(seq "$runs"); do
  # Wait for a leader that every node agrees on, with all three up.
  for _ in $(seq 200); do l=$(leader); [ "$l" != 0 ] && break; sleep 0.05; done
  "$client_bin" --peers "$api" put warm "$run" >/dev/null
  t0=$(date +%s.%N)
  if [ "$mode" = kill ]; then
    kill -9 "${pids[$l]}"
  else
    "$client_bin" --peers "$api" fault isolate "$l" >/dev/null
  fi
  "$client_bin" --peers "$api" --timeout 10 put "after-$run" v >/dev/null
  t1=$(date +%s.%N)
  ms=$(python3 -c "print(round(($t1-$t0)*1000))")
  if [ "$mode" = kill ]; then
    echo "run $run: killed leader $l, next put succeeded after ${ms} ms"
    start "$l"
  else
    echo "run $run: isolated leader $l, next put succeeded after ${ms} ms"
    "$client_bin" --peers "$api" fault heal >/dev/null
  fi
  times+=("$ms")
  sleep 1.5 # let the restarted node rejoin before the next kill (not a test: a pause)
done
printf '%s\n' "${times[@]}" | sort -n | python3 -c 'import sys; v=[int(x) for x in sys.stdin]; print(f"median over {len(v)} runs: {v[len(v)//2]} ms (min {v[0]}, max {v[-1]})")'
