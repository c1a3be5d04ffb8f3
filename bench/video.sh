#!/usr/bin/env bash
# Video matching benchmark, side by side with the reference:
#   hashmesh's vPDQ VideoIndex vs python-threatexchange's VPDQIndex (the matcher HMA uses),
#   on the same generated videos and queries, one core each.
# The Rust bench writes the data set and its decisions to target/bench-video.bin; the Python
# side (bench/vpdq_reference.py, in a throwaway venv at target/bench-video-venv) reads it,
# checks its decisions are the same, and the table below compares the two.
#
#   bash bench/video.sh [VIDEOS]      # VIDEOS of 60 frames each, default 100000
#   QUERIES=200 PY_BUDGET_S=600 bash bench/video.sh 100000
#
# PY_BUDGET_S bounds the reference's query phase (an exhaustive scan): after that many seconds
# it starts no further query video, and says how many it ran. The build is always on all of
# the data.
set -euo pipefail
cd "$(dirname "$0")/.."
videos="${1:-100000}"
queries="${QUERIES:-200}"
budget="${PY_BUDGET_S:-600}"
venv=target/bench-video-venv
dump="$PWD/target/bench-video.bin"
mkdir -p target

# The vpdq wheel builds from source against FFmpeg.
need_debs=(pkg-config cmake libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev
  libswscale-dev libswresample-dev libavfilter-dev)
if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import vpdq" 2>/dev/null; then
  missing=()
  for p in "${need_debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # python3 may not be Debian's (pyenv): look for its headers and venv module themselves.
  python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
    || missing+=(python3-dev)
  python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
  if ((${#missing[@]})); then
    echo "the vpdq Python package builds from source and needs: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

rust_out=$(cargo bench -q -p hashmesh-tests --bench video -- \
  --videos "$videos" --frames 60 --queries "$queries" --dump "$dump" | tee >(cat >&2))

if [[ ! -x "$venv/bin/python" ]]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "vpdq==0.2.5" "threatexchange==1.2.17" "faiss-cpu==1.15.1" "numpy"
py_out=$(OMP_NUM_THREADS=1 "$venv/bin/python" bench/vpdq_reference.py "$dump" --budget-s "$budget" \
  | tee >(cat >&2))

field() { grep "^$1 " <<<"$2" | tr ' ' '\n' | grep "^$3=" | cut -d= -f2; }
ratio() { python3 -c "print(f'{float($1)/float($2):.1f}x')"; }
r_build=$(field rust_vpdq "$rust_out" build_s); t_build=$(field threatexchange_vpdq "$py_out" build_s)
r_mem=$(field rust_vpdq "$rust_out" bytes_per_frame)
r_rss=$(field rust_vpdq "$rust_out" rss_bytes_per_frame); t_rss=$(field threatexchange_vpdq "$py_out" rss_bytes_per_frame)
r_ms=$(field rust_vpdq "$rust_out" mean_ms); t_ms=$(field threatexchange_vpdq "$py_out" mean_ms)
r_p99=$(field rust_vpdq "$rust_out" p99_ms); t_p99=$(field threatexchange_vpdq "$py_out" p99_ms)
r_qps=$(field rust_vpdq "$rust_out" qps); t_qps=$(field threatexchange_vpdq "$py_out" qps)
frames=$(field rust_vpdq "$rust_out" frames)
t_ran=$(field threatexchange_vpdq "$py_out" queries_run)
r_mis=$(field rust_vpdq "$rust_out" mismatches); t_mis=$(field threatexchange_vpdq "$py_out" mismatches)
echo
echo "== $videos videos x 60 frames ($frames comparable frames), one core =="
printf '%-30s %14s %16s %8s\n' "" hashmesh threatexchange ratio
printf '%-30s %14s %16s %8s\n' "index build (s)" "$r_build" "$t_build" "$(ratio "$t_build" "$r_build")"
printf '%-30s %14s %16s %8s\n' "bytes/frame (RSS delta)" "$r_rss" "$t_rss" "$(ratio "$t_rss" "$r_rss")"
printf '%-30s %14s %16s %8s\n' "bytes/frame (memory_bytes)" "$r_mem" "-" ""
printf '%-30s %14s %16s %8s\n' "ms per query video (mean)" "$r_ms" "$t_ms" "$(ratio "$t_ms" "$r_ms")"
printf '%-30s %14s %16s %8s\n' "ms per query video (p99)" "$r_p99" "$t_p99" "$(ratio "$t_p99" "$r_p99")"
printf '%-30s %14s %16s %8s\n' "query videos/s" "$r_qps" "$t_qps" "$(ratio "$r_qps" "$t_qps")"
printf '%-30s %14s %16s %8s\n' "query videos run" "$queries" "$t_ran" ""
printf '%-30s %14s %16s %8s\n' "decision mismatches" "$r_mis (vs brute)" "$t_mis (vs hashmesh)" ""
