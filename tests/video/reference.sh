#!/usr/bin/env bash
# Remakes node/tests/fixtures/vpdq/reference.json: the committed test videos
# (node/tests/fixtures/vpdq/videos/) hashed by Meta's vpdq (PyPI, built from source against
# Debian's FFmpeg libraries) and matched by python-threatexchange's brute-force vPDQ matcher.
# With --remake it first makes the videos again with tests/video/make-videos.sh (after changing
# it); the node's vPDQ tests then compare against the new values.
#
#   bash tests/video/reference.sh [--remake]
set -euo pipefail
cd "$(dirname "$0")/../.."
need=(ffmpeg pkg-config cmake libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev
  libswscale-dev libswresample-dev libavfilter-dev python3-dev)
missing=()
for pkg in "${need[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if ((${#missing[@]})); then
  echo "vpdq builds against FFmpeg's libraries; first run: apt-get install ${missing[*]}" >&2
  exit 1
fi
venv=target/vpdq-venv
if [[ ! -x "$venv/bin/python" ]]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "vpdq==0.2.5" "threatexchange==1.2.17"
videos=node/tests/fixtures/vpdq/videos
if [[ "${1:-}" == --remake ]]; then
  rm -rf "$videos"
  bash tests/video/make-videos.sh "$videos"
fi
"$venv/bin/python" tests/video/reference.py "$videos" > node/tests/fixtures/vpdq/reference.json
echo "wrote node/tests/fixtures/vpdq/reference.json"
