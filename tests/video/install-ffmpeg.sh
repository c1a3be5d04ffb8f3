#!/usr/bin/env bash
# Installs FFmpeg (Debian's `ffmpeg` package: ffmpeg and ffprobe), which the node runs to
# fingerprint videos and the vPDQ tests need. Does nothing when both programs are on PATH;
# otherwise installs with apt-get as root, or says what to run.
#
#   bash tests/video/install-ffmpeg.sh
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "FFmpeg is not installed: run 'sudo apt-get install ffmpeg' (or your system's package)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends ffmpeg >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends ffmpeg >/dev/null; }
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null
