#!/usr/bin/env bash
# Measures membership changes on a local cluster of release builds:
#  1. how long a learner takes to catch up a store of KEYS keys (default 100000);
#  2. write latency (16 closed-loop clients, 100-byte values) in a window without a change,
#     then in a window of the same length while nodes are added and removed one after the
#     other (each added as a learner, caught up, promoted through a joint configuration,
#     then removed through another).
#   scripts/measure-membership.sh [KEYS [SECONDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-100000}
secs=${2:-10}
source scripts/cargo-bins.sh
bins=$(cargo_bins --release -q -p raft-server -p raft-client)
server_bin=$(bin_named "$bins" raft-server)
client_bin=$(bin_named "$bins" raft-client)
dir=$(mktemp -d)
base=$((26000 + RANDOM % 2000))
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
peers_for() { local out="" i; for i in $(seq "$1"); do out+="${out:+,}$i=127.0.0.1:$((base + i))"; done; echo "$out"; }
api="127.0.0.1:$((base+1001)),127.0.0.1:$((base+1002)),127.0.0.1:$((base+1003))"
client() { "$client_bin" --peers "$api" "$@"; }
start() { # id [--join]
  "$server_bin" --id "$1" --peers "$(peers_for "$(( $1 > 3 ? $1 : 3 ))")" --data-dir "$dir/n$1" --headless ${2:-} 2>>"$dir/log$1" &
  pids+=($!)
}
# Applied index of node $1, and the highest commit index any node reports.
applied_of() { "$client_bin" --peers "127.0.0.1:$((base+1000+$1))" --timeout 2 status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0].get("applied_index",0))'; }
commit_max() { client --timeout 2 status --json | python3 -c 'import json,sys; print(max(n.get("commit_index",0) for n in json.load(sys.stdin)))'; }
now() { date +%s.%N; }
ms_since() { python3 -c "print(round(($(now)-$1)*1000))"; }

for i in 1 2 3; do start "$i"; done
for _ in $(seq 100); do client --timeout 1 put warm v >/dev/null 2>&1 && break; sleep 0.1; done
echo "writing $keys keys..."
client bench --op get --keys "$keys" --clients 16 --seconds 1 >/dev/null

start 4 --join
t0=$(now)
client member add 4 "127.0.0.1:$((base+4))" --learner >/dev/null
target=$(commit_max)
until [ "$(applied_of 4 2>/dev/null || echo 0)" -ge "$target" ]; do sleep 0.05; done
echo "learner 4 caught up $keys keys (index $target) in $(ms_since "$t0") ms from member add"
client --timeout 120 member promote 4 >/dev/null

echo "window 1: ${secs} s of writes, no membership change"
client bench --op put --clients 16 --seconds "$secs" --json
echo "window 2: ${secs} s of writes while nodes are added and removed"
client bench --op put --clients 16 --seconds "$secs" --json > "$dir/bench2" &
bench=$!
changes=0
id=5
while kill -0 "$bench" 2>/dev/null; do
  start "$id" --join
  client --timeout 120 member add "$id" "127.0.0.1:$((base+id))" >/dev/null && changes=$((changes + 1))
  client --timeout 60 member remove "$id" >/dev/null && changes=$((changes + 1))
  id=$((id + 1))
done
wait "$bench" || true
cat "$dir/bench2"
echo "membership changes made during window 2: $changes (nodes 5..$((id - 1)) each added, caught up, promoted, removed)"
