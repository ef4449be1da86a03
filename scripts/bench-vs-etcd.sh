#!/usr/bin/env bash
# etcd and raft-playground side by side on this machine: a 3-member etcd cluster, then a
# 3-node release cluster of ours (one after the other, never at once), each driven by the
# same load generator (`raft-client bench`, closed loop, clients on the leader) for puts and
# linearizable gets at 1, 16 and 64 clients, and linearizable gets spread over every member
# (`get-any`: ours with `--read-from any`, each get at a random node, which asks the leader
# for its read index; etcd's clients one per member in turn, where a member serves a
# linearizable get the same way). Prints a table with the ratios, and an fsync probe of the
# disk the data dirs are on (scripts/fsync-probe.py: p50/p99 of a 4 KiB append +
# fdatasync), the floor under every put.
#
#   scripts/bench-vs-etcd.sh [SECONDS [ROUNDS]]   seconds per cell (10), rounds (1)
#
# With several rounds, each round starts both systems afresh (etcd, then ours) and the
# table shows each cell's median round, so one round disturbed by another job on the
# machine does not decide the result; the ratio of every round is shown too.
# Environment: BENCH_CLIENTS (default "1 16 64"), BENCH_OPS ("put get get-any"),
# BENCH_VALUE_SIZE (100), BENCH_KEYS (1000). Needs etcd on PATH and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
rounds=${2:-1}
clients_list=${BENCH_CLIENTS:-1 16 64}
ops=${BENCH_OPS:-put get get-any}
value_size=${BENCH_VALUE_SIZE:-100}
keys=${BENCH_KEYS:-1000}
if ! [[ $rounds =~ ^[1-9][0-9]*$ ]]; then
  echo "error: ROUNDS must be a positive whole number, not \"$rounds\"" >&2
  exit 2
fi

if ! command -v etcd >/dev/null 2>&1; then
  cat >&2 <<'EOF'
error: etcd is not on PATH. To install it:
  Debian/Ubuntu:  sudo apt-get update && sudo apt-get install -y etcd-server etcd-client
  elsewhere:      a release from https://github.com/etcd-io/etcd/releases, with etcd on PATH
EOF
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is needed (ports, health checks, the table)" >&2
  exit 1
fi

echo "building release binaries..." >&2
# cargo names the binaries it built: wherever CARGO_TARGET_DIR (or a cargo config) puts them.
source scripts/cargo-bins.sh
bins=$(cargo_bins --release -q -p raft-server -p raft-client)
bin=$(dirname "$(bin_named "$bins" raft-server)")

dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-etcd.XXXXXX")
results="$dir/results"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# Stops what we started (SIGTERM, then wait for each), between the two systems.
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

# Fails with the logs when a process we started has exited.
check_alive() {
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "error: a server exited early; its logs:" >&2
      tail -n 20 "$dir"/*.log >&2
      exit 1
    fi
  done
}

# N free loopback ports, from the kernel.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# A base port whose peer ports base+1..3 and API ports (peer + 1000) are free: our servers
# serve their client API on their peer port + 1000.
free_base() {
  python3 <<'EOF'
import random, socket
def free(p):
    try:
        s = socket.socket(); s.bind(("127.0.0.1", p)); s.close(); return True
    except OSError:
        return False
for _ in range(200):
    base = random.randrange(20000, 29000, 10)
    if all(free(base + i) and free(base + i + 1000) for i in (1, 2, 3)):
        print(base); break
else:
    raise SystemExit("no free port range")
EOF
}

# Polls `probe` (a command) every 0.1 s until it succeeds; fails after DEADLINE seconds.
wait_until() {
  local what=$1 deadline=$((SECONDS + 60))
  shift
  until "$@" >/dev/null 2>&1; do
    check_alive
    if ((SECONDS >= deadline)); then
      echo "error: timed out waiting for $what; logs:" >&2
      tail -n 20 "$dir"/*.log >&2
      exit 1
    fi
    sleep 0.1
  done
}

etcd_healthy() {
  python3 - "$@" <<'EOF'
import json, sys, urllib.request
for addr in sys.argv[1:]:
    with urllib.request.urlopen(f"http://{addr}/health", timeout=1) as r:
        if json.load(r).get("health") != "true":
            sys.exit(1)
EOF
}

ours_have_leader() {
  "$bin/raft-client" --peers "$1" --timeout 1 status --json | python3 -c '
import json, sys
nodes = json.load(sys.stdin)
leaders = {n.get("leader_id") for n in nodes}
ok = all(n.get("reachable") for n in nodes) and len(leaders) == 1 and 0 not in leaders
sys.exit(0 if ok and any(n.get("role") == "Leader" for n in nodes) else 1)'
}

# Runs every cell against one system: bench_all NAME PEERS TARGET ROUND.
bench_all() {
  local name=$1 peers=$2 target=$3 round=$4
  echo "round $round, $name: load average $(cut -d' ' -f1-3 /proc/loadavg) before its runs" >&2
  for op in $ops; do
    for c in $clients_list; do
      echo "  $name $op, $c clients, ${seconds}s..." >&2
      local out how=(--op "$op")
      if [[ $op == get-any ]]; then how=(--op get --read-from any); fi
      if ! out=$("$bin/raft-client" --peers "$peers" bench --target "$target" "${how[@]}" \
        --clients "$c" --seconds "$seconds" --value-size "$value_size" --keys "$keys" --json); then
        echo "error: $name $op at $c clients failed" >&2
        exit 1
      fi
      echo "$round $name $op $out" >>"$results"
    done
  done
}

# etcd: three members on loopback, each with its own data dir, defaults otherwise.
run_etcd() {
  local round=$1 ep initial etcd_peers i client peer
  read -r -a ep <<<"$(free_ports 6)"
  initial="e1=http://127.0.0.1:${ep[3]},e2=http://127.0.0.1:${ep[4]},e3=http://127.0.0.1:${ep[5]}"
  etcd_peers="127.0.0.1:${ep[0]},127.0.0.1:${ep[1]},127.0.0.1:${ep[2]}"
  for i in 0 1 2; do
    client="http://127.0.0.1:${ep[i]}" peer="http://127.0.0.1:${ep[i + 3]}"
    etcd --name "e$((i + 1))" --data-dir "$dir/r$round-etcd-$((i + 1))" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$initial" --initial-cluster-state new \
      --initial-cluster-token "bench-$$-$round" 2>"$dir/r$round-etcd-$((i + 1)).log" &
    pids+=($!)
  done
  # shellcheck disable=SC2086 # one argument per address
  wait_until "etcd to be healthy" etcd_healthy ${etcd_peers//,/ }
  bench_all etcd "$etcd_peers" etcd "$round"
  stop_all
}

# Ours: three headless release nodes, defaults otherwise.
run_ours() {
  local round=$1 base raft_peers api i
  base=$(free_base)
  raft_peers="1=127.0.0.1:$((base + 1)),2=127.0.0.1:$((base + 2)),3=127.0.0.1:$((base + 3))"
  api="127.0.0.1:$((base + 1001)),127.0.0.1:$((base + 1002)),127.0.0.1:$((base + 1003))"
  for i in 1 2 3; do
    "$bin/raft-server" --id "$i" --peers "$raft_peers" --data-dir "$dir/r$round-node-$i" \
      --headless 2>"$dir/r$round-node-$i.log" &
    pids+=($!)
  done
  wait_until "our cluster to elect a leader" ours_have_leader "$api"
  bench_all ours "$api" playground "$round"
  stop_all
}

etcd_version=$(etcd --version | head -n 1 | sed "s/^etcd Version: /etcd /")
# Before any server runs, on the disk the data dirs are on.
fsync_line=$(python3 scripts/fsync-probe.py "$dir")
for round in $(seq "$rounds"); do
  run_etcd "$round"
  run_ours "$round"
done

python3 - "$results" "$etcd_version" "$seconds" "$value_size" "$keys" "$rounds" "$fsync_line" <<'EOF'
import json, sys
from collections import defaultdict
path, version, seconds, value_size, keys, rounds, fsync_line = sys.argv[1:]
cells = defaultdict(dict)  # (op, clients) -> {(system, round): result}
for line in open(path):
    rnd, name, label, doc = line.split(" ", 3)
    r = json.loads(doc)
    cells[(label, r["clients"])][(name, int(rnd))] = r
many = int(rounds) > 1

def median(results):
    # The middle round by throughput (the lower middle for an even count), with its latencies.
    ordered = sorted(results, key=lambda r: r["ops_per_sec"])
    return ordered[(len(ordered) - 1) // 2]

def ratio(e, o):
    return o["ops_per_sec"] / e["ops_per_sec"] if e["ops_per_sec"] else float("nan")

def lat(r):
    return f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}"

print(f"{version} (3 members) vs raft-playground (3 nodes), one after the other on this machine;")
print(f"{value_size}-byte values, {keys} keys, {seconds} s per cell, closed loop, clients on the leader"
      + (f"; median of {rounds} rounds." if many else "."))
print()
print("get-any: linearizable gets spread over every member (ours: --read-from any).")
print()
print(f"{'op':<7} {'clients':>7} {'etcd ops/s':>11} {'ours ops/s':>11} {'ours/etcd':>10}"
      f" {'etcd p50/p99 ms':>16} {'ours p50/p99 ms':>16}" + ("  ratio per round" if many else ""))
failed = []
for (op, clients), cell in cells.items():
    pairs = [(cell[("etcd", i)], cell[("ours", i)]) for i in range(1, int(rounds) + 1)
             if ("etcd", i) in cell and ("ours", i) in cell]
    if not pairs:
        continue
    e = median([p[0] for p in pairs])
    o = median([p[1] for p in pairs])
    line = (f"{op:<7} {clients:>7} {e['ops_per_sec']:>11.0f} {o['ops_per_sec']:>11.0f}"
            f" {ratio(e, o):>9.2f}x {lat(e):>16} {lat(o):>16}")
    if many:
        line += "  " + " ".join(f"{ratio(*p):.2f}" for p in pairs)
    print(line)
    for pair in pairs:
        for who, r in zip(("etcd", "ours"), pair):
            if r["failed"]:
                failed.append(f"{who} {op} at {clients} clients: {r['failed']} failed")
print()
print(fsync_line)
if failed:
    print("\nfailed operations: " + "; ".join(failed))
EOF
