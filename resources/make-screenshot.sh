#!/usr/bin/env bash
# Makes resources/dashboards-election.png: three real raft-server dashboards side by side in
# tmux, just after the leader was stopped with Ctrl+C and restarted, while the other two hold
# an election. Needs tmux, python3 with Pillow, and the DejaVu Sans Mono font.
#   resources/make-screenshot.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p raft-server -p raft-client
bin=$PWD/target/debug
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
# the other two notice the silence and elect a new leader.
pane="shot.$((l-1))"
t send-keys -t "$pane" C-c
sleep 0.3
t send-keys -t "$pane" "clear; $bin/raft-server --id $l --peers $peers --data-dir $work/node-$l --tick-ms 100 --election-ticks 20" Enter
# Capture as soon as some dashboard shows a candidate, or when a new leader has been elected.
# Plain captures (.txt) are for the checks, coloured ones (.ans) for the picture.
shot() {
  for i in 0 1 2; do
    t capture-pane -e -p -t "shot.$i" > "$work/pane$i.ans"
    t capture-pane -p -t "shot.$i" > "$work/pane$i.txt"
  done
}
for _ in $(seq 600); do
  shot
  if grep -qE " (PRECANDIDATE|CANDIDATE) " "$work"/pane*.txt; then echo "caught a candidate"; break; fi
  leaders=$(cat "$work"/pane*.txt | grep -c " LEADER " || true)
  if [ "$leaders" = 1 ] && ! grep -q " LEADER " "$work/pane$((l-1)).txt"; then
    sleep 0.3; shot; echo "new leader elected"; break
  fi
  sleep 0.01
done
python3 resources/ansi2png.py resources/dashboards-election.png "$work"/pane0.ans "$work"/pane1.ans "$work"/pane2.ans
echo "wrote resources/dashboards-election.png"
