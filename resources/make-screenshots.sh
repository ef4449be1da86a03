#!/usr/bin/env bash
# Makes the README's screenshots from the real programs, in tmux:
#  - resources/dashboards-election.png: three raft-server dashboards side by side just after
#    the leader was stopped with Ctrl+C and restarted, while the other two hold an election;
#  - resources/client-failover.png: the raft-client TUI failing over when the leader dies.
# Needs tmux, python3 with Pillow (pip install pillow), and the DejaVu Sans Mono font.
#   resources/make-screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-bins.sh
bins=$(cargo_bins -q -p raft-server -p raft-client)
# Both binaries are in the same directory: wherever cargo put this build.
bin=$(dirname "$(bin_named "$bins" raft-server)")
work=$(mktemp -d)
sock=raft-shot-$$
base=$((23000 + RANDOM % 2000))
peers="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
api="127.0.0.1:$((base+1001)),127.0.0.1:$((base+1002)),127.0.0.1:$((base+1003))"
t() { tmux -L "$sock" "$@"; }
cleanup() { t kill-server 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# One window, three panes of 96x34, each running a shell that starts one node. Slower ticks
# (100 ms, elections after 2-4 s) leave time to see the followers notice the silence.
t new-session -d -s shot -x 292 -y 34 "bash --norc --noprofile"
t split-window -h -t shot "bash --norc --noprofile"
t split-window -h -t shot "bash --norc --noprofile"
t select-layout -t shot even-horizontal
for i in 1 2 3; do
  t send-keys -t "shot.$((i-1))" "clear; $bin/raft-server --id $i --peers $peers --data-dir $work/node-$i --tick-ms 100 --election-ticks 20" Enter
done
leader() {
  "$bin/raft-client" --peers "$api" --timeout 2 status --json |
    python3 -c 'import json,sys; l=[n["id"] for n in json.load(sys.stdin) if n.get("role")=="Leader"]; print(l[0] if l else 0)'
}
for _ in $(seq 100); do l=$(leader); [ "$l" != 0 ] && break; sleep 0.1; done
for kv in "color=blue" "shape=circle" "size=42" "greeting=hello, raft" "bin=$(printf 'a\tb')"; do
  "$bin/raft-client" --peers "$api" put "${kv%%=*}" "${kv#*=}" >/dev/null
done
sleep 1
# Stop the leader with Ctrl+C and start it again at once: it comes back as a follower while
# the other two notice the silence and elect a new leader. A candidate lasts only a few ms,
# so capture as fast as tmux allows; if the election finished between two captures, stop
# the new leader and try again (up to 8 elections), else keep the frame after the election.
# Plain captures (.txt) are for the checks, coloured ones (.ans) for the picture.
shot() {
  for i in 0 1 2; do
    t capture-pane -e -p -t "shot.$i" > "$work/pane$i.ans"
    t capture-pane -p -t "shot.$i" > "$work/pane$i.txt"
  done
}
caught=0
for attempt in $(seq 8); do
  for _ in $(seq 100); do l=$(leader); [ "$l" != 0 ] && break; sleep 0.1; done
  pane="shot.$((l-1))"
  t send-keys -t "$pane" C-c
  sleep 0.3
  t send-keys -t "$pane" "clear; $bin/raft-server --id $l --peers $peers --data-dir $work/node-$l --tick-ms 100 --election-ticks 20" Enter
  for _ in $(seq 600); do
    shot
    if grep -qE " (PRECANDIDATE|CANDIDATE) " "$work"/pane*.txt; then caught=1; break; fi
    leaders=$(cat "$work"/pane*.txt | grep -c " LEADER " || true)
    if [ "$leaders" = 1 ] && ! grep -q " LEADER " "$work/pane$((l-1)).txt"; then
      sleep 0.3; shot; break
    fi
  done
  if [ "$caught" = 1 ]; then echo "caught a candidate (election $attempt)"; break; fi
  sleep 3 # let the restarted node catch up before the next election
done
python3 resources/ansi2png.py resources/dashboards-election.png "$work"/pane0.ans "$work"/pane1.ans "$work"/pane2.ans
echo "wrote resources/dashboards-election.png"
t kill-server
sock=$sock-client # a fresh tmux server: reusing a socket just killed can race its exit

# The client: three headless servers, the TUI in tmux; a put, a SIGKILL of the leader, a put
# that fails over, a get. Ports of its own: the dashboards' servers may still be exiting.
base=$((base + 10))
peers="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
api="127.0.0.1:$((base+1001)),127.0.0.1:$((base+1002)),127.0.0.1:$((base+1003))"
for i in 1 2 3; do
  "$bin/raft-server" --id "$i" --peers "$peers" --data-dir "$work/client-$i" --headless 2>/dev/null &
  echo $! > "$work/pid$i"
done
cleanup_servers() { for i in 1 2 3; do kill -9 "$(cat "$work/pid$i")" 2>/dev/null || true; done; }
trap 'cleanup_servers; cleanup' EXIT
t new-session -d -s client -x 118 -y 30 "$bin/raft-client --peers $api; sleep 60"
wait_for() { for _ in $(seq 200); do t capture-pane -p -t client | grep -q "$1" && return 0; sleep 0.05; done; echo "timed out waiting for: $1" >&2; exit 1; }
wait_for "Cluster · leader node"
t send-keys -t client "put color blue" Enter
wait_for "✓ OK"
l=$(leader)
kill -9 "$(cat "$work/pid$l")"
t send-keys -t client "put hello world" Enter
for _ in $(seq 200); do [ "$(t capture-pane -p -t client | grep -c '✓ OK')" = 2 ] && break; sleep 0.05; done
t send-keys -t client "get hello" Enter
wait_for "✓ world"
sleep 1.2 # let the cluster bar show the dead node (it refreshes every second)
t capture-pane -e -p -t client > "$work/client.ans"
python3 resources/ansi2png.py resources/client-failover.png "$work/client.ans"
echo "wrote resources/client-failover.png"
