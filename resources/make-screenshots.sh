#!/usr/bin/env bash
# Makes the README's screenshots from the real programs, in tmux:
#  election   resources/dashboards-election.png: three dashboards just after the leader was
#             stopped with Ctrl+C and restarted, while the other two hold an election;
#  client     resources/client-failover.png: the client TUI failing over when the leader dies;
#  partition  resources/partitioned-leader.png and resources/partition-healed.png: an isolated
#             leader with a write it can never commit, a refused linearizable read and a stale
#             one, then the same node after `fault heal`;
#  loss       resources/message-loss.png: a follower losing 30% of its messages, catching up;
#  slowmo     resources/slow-motion-election.png: an election in slow motion, message by message;
#  tour       resources/tour-partitioned-leader.png: the tour's partitioned-leader chapter at the
#             step where the cut-off leader holds a write it cannot commit, beside its dashboard;
#  viewelection  resources/view-election.png: the cluster view of an election in slow motion,
#             heartbeats folded: pre-votes, votes, the first appends as a diagram;
#  viewpartition resources/view-partitioned-leader.png: the cluster view of a partitioned leader
#             whose uncommitted entry stands out in the logs side by side.
# Needs tmux, python3 with Pillow (pip install pillow), and the DejaVu Sans Mono font.
#   resources/make-screenshots.sh [SCENE...]        (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
scenes=("$@")
[ ${#scenes[@]} -gt 0 ] || scenes=(election client partition loss slowmo tour viewelection viewpartition)
source scripts/cargo-bins.sh
bins=$(cargo_bins -q -p raft-server -p raft-client)
# Both binaries are in the same directory: wherever cargo put this build.
bin=$(dirname "$(bin_named "$bins" raft-server)")
work=$(mktemp -d)
sock=raft-shot-$$
base=$((23000 + RANDOM % 2000))
t() { tmux -L "$sock" "$@"; }
pids=()
cleanup() {
  t kill-server 2>/dev/null || true
  # kill-server leaves the socket file behind.
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
# Ports of a scene's own: servers of the scene before may still be exiting.
next_ports() {
  base=$((base + 10))
  peers="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
  api="127.0.0.1:$((base+1001)),127.0.0.1:$((base+1002)),127.0.0.1:$((base+1003))"
}
client() { "$bin/raft-client" --peers "$api" "$@"; }
# The leader's id (0: none); with an argument, a leader other than that node (a frozen or
# isolated old leader still calls itself one).
leader() {
  client --timeout 2 status --json |
    python3 -c 'import json,sys; x=int(sys.argv[1]); l=[n["id"] for n in json.load(sys.stdin) if n.get("role")=="Leader" and n["id"]!=x]; print(l[0] if l else 0)' "${1:-0}"
}
# Waits for a leader other than node $1; prints it.
new_leader() { for _ in $(seq 300); do nl=$(leader "$1"); [ "$nl" != 0 ] && echo "$nl" && return 0; sleep 0.1; done; echo "no new leader" >&2; exit 1; }
wait_leader() { for _ in $(seq 300); do l=$(leader); [ "$l" != 0 ] && return 0; sleep 0.1; done; echo "no leader" >&2; exit 1; }
# Polls a tmux target until its screen matches a regex (grep -E), up to $2 tenths of a second.
wait_screen() {
  local target=$1 pattern=$2 tries=${3:-300}
  for _ in $(seq "$tries"); do t capture-pane -p -t "$target" | grep -qE -- "$pattern" && return 0; sleep 0.1; done
  echo "timed out waiting for /$pattern/ in $target:" >&2; t capture-pane -p -t "$target" >&2; exit 1
}
# Types a line into the client TUI and waits for its answer: a ✓ or ✗ line below the
# command's own echo, and nothing in flight.
type_line() {
  t send-keys -t c -l "$1"; t send-keys -t c Enter
  for _ in $(seq 300); do
    t capture-pane -p -t c | python3 -c '
import sys
cmd, lines = "› " + sys.argv[1], sys.stdin.read().splitlines()
if any("Esc cancels" in l for l in lines): sys.exit(1)
at = max((i for i, l in enumerate(lines) if cmd in l), default=None)
sys.exit(0 if at is not None and any(("✓" in l or "✗" in l) for l in lines[at + 1:]) else 1)
' "$1" && return 0
    sleep 0.1
  done
  echo "no answer to: $1" >&2; t capture-pane -p -t c >&2; exit 1
}
capture() { t capture-pane -e -p -t "$1" > "$work/$2.ans"; }
# Three dashboards in sessions n1..n3 (COLS x ROWS each) and the client TUI in session c.
start_cluster() {
  local cols=$1 rows=$2
  next_ports
  for i in 1 2 3; do
    t new-session -d -s "n$i" -x "$cols" -y "$rows" \
      "$bin/raft-server --id $i --peers $peers --data-dir $work/$base-node-$i; sleep 600"
  done
  t new-session -d -s c -x "$cols" -y "$rows" "$bin/raft-client --peers $api; sleep 600"
  wait_leader
  wait_screen c "Cluster · leader node"
}
stop_cluster() { for s in n1 n2 n3 c; do t kill-session -t "$s" 2>/dev/null || true; done; }

scene_election() {
next_ports
# One window, three panes of 96x34, each running a shell that starts one node. Slower ticks
# (100 ms, elections after 2-4 s) leave time to see the followers notice the silence.
t new-session -d -s shot -x 292 -y 34 "bash --norc --noprofile"
t split-window -h -t shot "bash --norc --noprofile"
t split-window -h -t shot "bash --norc --noprofile"
t select-layout -t shot even-horizontal
for i in 1 2 3; do
  t send-keys -t "shot.$((i-1))" "clear; $bin/raft-server --id $i --peers $peers --data-dir $work/node-$i --tick-ms 100 --election-ticks 20" Enter
done
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
t kill-session -t shot
}

scene_client() {
# The client: three headless servers, the TUI in tmux; a put, a SIGKILL of the leader, a put
# that fails over, a get.
next_ports
for i in 1 2 3; do
  "$bin/raft-server" --id "$i" --peers "$peers" --data-dir "$work/client-$i" --headless 2>/dev/null &
  echo $! > "$work/pid$i"
  pids+=("$!")
done
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
t kill-session -t client
for i in 1 2 3; do kill -9 "$(cat "$work/pid$i")" 2>/dev/null || true; done
}

# The partitioned leader, as the README tells it (in slow motion, so it can be watched).
scene_partition() {
  start_cluster 100 36
  type_line "put x old"
  local l; l=$(leader)
  type_line "slow 10"
  type_line "fault isolate $l"
  # Node $l still believes it leads: it appends the write and waits for a majority it cannot
  # reach. The client gives up after its deadline: the outcome is unknown.
  type_line "put --node $l x lost"
  wait_screen "n$l" "stepped down" 200
  new_leader "$l" >/dev/null
  type_line "put x new"
  type_line "get --node $l x"
  type_line "get --stale --node $l x"
  capture "n$l" old-leader; capture c client
  python3 resources/ansi2png.py resources/partitioned-leader.png "$work/old-leader.ans" "$work/client.ans"
  echo "wrote resources/partitioned-leader.png"
  type_line "fault heal"
  type_line "slow 1"
  wait_screen "n$l" "uncommitted entr" 300
  type_line "get --stale --node $l x"
  sleep 1.2 # let the dashboards' once-a-second clocks and the cluster bar settle
  capture "n$l" old-leader; capture c client
  python3 resources/ansi2png.py resources/partition-healed.png "$work/old-leader.ans" "$work/client.ans"
  echo "wrote resources/partition-healed.png"
  stop_cluster
}

# A follower losing 30% of its messages: the leader's cluster panel and the follower's
# messages panel while writes go on.
scene_loss() {
  start_cluster 100 36
  local l f; l=$(leader)
  f=$(( l % 3 + 1 ))
  type_line "fault drop $f 30"
  t send-keys -t "n$f" m
  for i in $(seq 40); do client put "key$i" "value $i" >/dev/null || true; done
  wait_screen "n$f" "dropped"
  capture "n$l" leader; capture "n$f" lossy
  python3 resources/ansi2png.py resources/message-loss.png "$work/leader.ans" "$work/lossy.ans"
  echo "wrote resources/message-loss.png"
  type_line "fault heal"
  stop_cluster
}

# An election in slow motion: the leader frozen, the other two with their messages panels.
scene_slowmo() {
  start_cluster 100 36
  type_line "put greeting hello"
  local l a b; l=$(leader)
  a=$(( l % 3 + 1 )); b=$(( a % 3 + 1 ))
  type_line "slow 10"
  t send-keys -t "n$a" m; t send-keys -t "n$b" m
  type_line "fault freeze $l"
  local nl; nl=$(new_leader "$l")
  wait_screen "n$a" "leader is node $nl" 100
  wait_screen "n$b" "leader is node $nl" 100
  sleep 0.5
  capture "n$a" first; capture "n$b" second
  python3 resources/ansi2png.py resources/slow-motion-election.png "$work/first.ans" "$work/second.ans"
  echo "wrote resources/slow-motion-election.png"
  type_line "fault heal"
  type_line "slow 1"
  stop_cluster
}

# The tour, chapter 4, step 2: what it says and checked, beside the dashboard it points at.
scene_tour() {
  start_cluster 100 36
  t send-keys -t c -l "tour 4"; t send-keys -t c Enter
  wait_screen c "4\.1/5 · Enter"
  t send-keys -t c Enter
  wait_screen c "4\.2/5 · Enter"
  t send-keys -t c Enter
  wait_screen c "past its commit index" 200
  # Slow motion: the cut-off node still calls itself the leader, and no one else does yet.
  local l; l=$(leader)
  wait_screen "n$l" "uncommitted" 100
  sleep 1.2 # let the dashboards' once-a-second panels and the cluster bar settle
  capture "n$l" old-leader; capture c client
  python3 resources/ansi2png.py resources/tour-partitioned-leader.png "$work/client.ans" "$work/old-leader.ans"
  echo "wrote resources/tour-partitioned-leader.png"
  t send-keys -t c q # leaves the tour, which heals
  wait_screen c "You left the tour"
  stop_cluster
}

# The cluster view beside the cluster (session v), COLS x ROWS.
start_view() { t new-session -d -s v -x "$1" -y "$2" "$bin/raft-client --peers $api watch; sleep 600"; wait_screen v "leader node"; }

# An election in slow motion, as the cluster view draws it.
scene_viewelection() {
  start_cluster 100 36
  start_view 150 44
  type_line "put greeting hello"
  local l; l=$(leader)
  type_line "slow 10"
  t send-keys -t v h # heartbeats folded: the election is what is left
  type_line "fault freeze $l"
  local nl; nl=$(new_leader "$l")
  wait_screen v "leader node $nl" 100
  wait_screen v "App t" 100
  sleep 0.5
  t send-keys -t v Space # paused, so the picture holds still
  wait_screen v "paused" 50
  capture v view
  python3 resources/ansi2png.py resources/view-election.png "$work/view.ans"
  echo "wrote resources/view-election.png"
  type_line "fault heal"
  type_line "slow 1"
  t kill-session -t v
  stop_cluster
}

# A partitioned leader's uncommitted entry, standing out in the logs side by side.
scene_viewpartition() {
  start_cluster 100 36
  start_view 150 44
  type_line "put x old"
  local l; l=$(leader)
  type_line "fault isolate $l"
  type_line "put --node $l x lost"
  new_leader "$l" >/dev/null
  type_line "put x new"
  wait_screen v "not the leader's" 100
  sleep 1
  capture v view
  python3 resources/ansi2png.py resources/view-partitioned-leader.png "$work/view.ans"
  echo "wrote resources/view-partitioned-leader.png"
  type_line "fault heal"
  t kill-session -t v
  stop_cluster
}

for scene in "${scenes[@]}"; do
  case "$scene" in
    election | client | partition | loss | slowmo | tour | viewelection | viewpartition) "scene_$scene" ;;
    *) echo "unknown scene '$scene': election, client, partition, loss, slowmo, tour, viewelection or viewpartition" >&2; exit 2 ;;
  esac
done
