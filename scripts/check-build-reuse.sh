#!/usr/bin/env bash
# Checks that the README's walkthrough builds once: after `cargo build` (the workspace),
# `cargo build -p raft-server` and `cargo build -p raft-client` (what `cargo run -p ...`
# does) must compile nothing. Building one package alone unifies only its own dependencies'
# features; if they differ from the workspace's, cargo silently rebuilds tokio, tonic and
# more (about 40 s), which looks like a hang behind `cargo run -q`.
#   scripts/check-build-reuse.sh [cargo build options, e.g. --release]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace "$@"
status=0
for package in raft-server raft-client; do
  rebuilt=$(cargo build -p "$package" "$@" 2>&1 | grep -E '^ *Compiling ' || true)
  if [ -n "$rebuilt" ]; then
    echo "cargo build -p $package rebuilt what cargo build had just built:" >&2
    echo "$rebuilt" >&2
    echo "(align its dependencies' features with the workspace's: see crates/raft-client/Cargo.toml)" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "build reuse: cargo build -p raft-server / -p raft-client compile nothing after cargo build"
exit "$status"
