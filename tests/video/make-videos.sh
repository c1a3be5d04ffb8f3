#!/usr/bin/env bash
# Makes the test videos for vPDQ with FFmpeg, from the still images in node/tests/fixtures/pdq:
# a source video (6 stills, 3.3 s each, panning slowly across each so every second differs) and copies
# of it as a platform would meet them — re-encoded in other codecs, resized, at other frame
# rates, trimmed, mirrored — plus an unrelated video made from other stills.
#
#   bash tests/video/make-videos.sh OUT_DIR
#
# Its output is committed in node/tests/fixtures/vpdq/videos/, and the tests read those files:
# encoders are free to choose differently between FFmpeg builds and CPUs (the same script made
# other bytes for mirrored.mp4 on two machines, 6 bits apart in one frame's PDQ hash), while
# decoders must give the same frames. tests/video/reference.sh --remake runs it again and
# remakes the expected values from the new files.
set -euo pipefail
out=${1:?usage: make-videos.sh OUT_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
stills=$root/node/tests/fixtures/pdq
mkdir -p "$out"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# slideshow OUT FPS STILL...: 3.3 s a still (so cuts fall between the seconds sampled) at FPS, 480×320, panning 8 px/s across it.
slideshow() {
  local dest=$1 fps=$2
  shift 2
  local inputs=() filters="" joins="" n=0
  for still in "$@"; do
    inputs+=(-loop 1 -framerate "$fps" -t 3.3 -i "$stills/$still")
    filters+="[$n:v]scale=720:480,format=rgb24,crop=480:320:x='t*8':y='t*4',setsar=1[v$n];"
    joins+="[v$n]"
    n=$((n + 1))
  done
  ff "${inputs[@]}" -filter_complex "${filters}${joins}concat=n=$n:v=1:a=0,format=yuv420p[out]" \
    -map "[out]" -c:v libx264 -preset veryfast -crf 18 -threads 1 "$dest"
}

slideshow "$out/source.mp4" 25 astronaut.png chelsea.png coffee.png rocket.png hubble_deep_field.png immunohistochemistry.png
slideshow "$out/unrelated.mp4" 25 camera.png moon.png coins.png gradient_700x300.png checker_200x160.png logo.png

src=$out/source.mp4
ff -i "$src" -c:v libvpx -b:v 400k -threads 1 "$out/reencoded_vp8.webm"
ff -i "$src" -c:v mpeg4 -q:v 6 -r 24 -threads 1 "$out/mpeg4_24fps.avi"
ff -i "$src" -c:v mjpeg -q:v 5 -r 5 -pix_fmt yuvj420p -threads 1 "$out/mjpeg_5fps.mov"
ff -i "$src" -vf scale=240:160 -r 30 -c:v libx264 -preset veryfast -crf 23 -threads 1 "$out/resized_30fps.mp4"
ff -i "$src" -r 30000/1001 -c:v libx264 -preset veryfast -crf 23 -threads 1 "$out/ntsc_29.97fps.mp4"
ff -ss 4.2 -i "$src" -t 9 -c:v libx264 -preset veryfast -crf 20 -threads 1 "$out/trimmed.mp4"
ff -i "$src" -vf hflip -c:v libx264 -preset veryfast -crf 20 -threads 1 "$out/mirrored.mp4"
