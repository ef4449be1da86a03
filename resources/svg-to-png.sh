#!/usr/bin/env bash
# Renders an SVG (a `raft-client replay FILE --export svg -o OUT.svg` diagram, say) to a PNG
# with headless Chromium, at the SVG's own size (the width and height of its <svg> element)
# unless WIDTH and HEIGHT are given.
#   resources/svg-to-png.sh IN.svg OUT.png [WIDTH HEIGHT]
set -euo pipefail
if [ $# -ne 2 ] && [ $# -ne 4 ]; then
  echo "usage: $0 IN.svg OUT.png [WIDTH HEIGHT]" >&2
  exit 2
fi
in=$1
out=$2
if [ ! -r "$in" ]; then
  echo "error: cannot read $in" >&2
  exit 2
fi
browser=""
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    browser=$(command -v "$name")
    break
  fi
done
if [ -z "$browser" ]; then
  echo "error: chromium is not installed: apt-get install chromium" >&2
  exit 1
fi
if [ $# -eq 4 ]; then
  width=$3
  height=$4
else
  # The first <svg ...> tag's width and height, in pixels.
  tag=$(tr '\n' ' ' <"$in" | grep -o '<svg[^>]*>' | head -n 1 || true)
  width=$(sed -n 's/.* width="\([0-9.]*\)".*/\1/p' <<<"$tag")
  height=$(sed -n 's/.* height="\([0-9.]*\)".*/\1/p' <<<"$tag")
  width=${width%.*}
  height=${height%.*}
  if [ -z "$width" ] || [ -z "$height" ]; then
    echo "error: $in has no width and height on its <svg> element: give WIDTH HEIGHT" >&2
    exit 2
  fi
fi
abs_in=$(realpath "$in")
abs_out=$(realpath -m "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: Chromium refuses to run as root without it (containers, CI).
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --force-device-scale-factor=1 --user-data-dir="$profile" \
  --window-size="$width,$height" --screenshot="$abs_out" "file://$abs_in" \
  >/dev/null 2>"$profile/chromium.log" || {
  cat "$profile/chromium.log" >&2
  echo "error: chromium could not render $in" >&2
  exit 1
}
if [ ! -s "$abs_out" ]; then
  cat "$profile/chromium.log" >&2
  echo "error: chromium wrote no $out" >&2
  exit 1
fi
echo "$out: ${width}x${height}" >&2
