# Sourced by ./playground and scripts/*.sh. Builds with cargo and prints the path of each
# executable built, one per line, as cargo's own JSON build messages name them: binaries
# are wherever CARGO_TARGET_DIR, a .cargo/config.toml or --target put them, not
# necessarily in target/debug.
#   cargo_bins [cargo build options...]     e.g. cargo_bins -q --release -p raft-server
cargo_bins() {
  # Diagnostics are rendered to stderr as usual; stdout carries one JSON object a line.
  cargo build --message-format=json-render-diagnostics "$@" |
    sed -n '/"reason":"compiler-artifact"/ s/.*"executable":"\([^"]*\)".*/\1/p'
  return "${PIPESTATUS[0]}"
}

# The one path among cargo_bins' output ($1) whose file name is $2; fails when missing.
bin_named() {
  local path
  while IFS= read -r path; do
    if [ "${path##*/}" = "$2" ]; then
      printf '%s\n' "$path"
      return 0
    fi
  done <<<"$1"
  echo "error: cargo built no executable named $2" >&2
  return 1
}
