#!/usr/bin/env bash
# Matching benchmark, side by side with the tools the industry uses today:
#   hashmesh's PDQ index vs python-threatexchange's PDQIndex (faiss multi-hash),
#   hashmesh's PDQ hasher vs pdqhash + Pillow.
# Installs the Python side into a throwaway venv (target/bench-venv) and prints the ratios.
#
#   bash bench/matching.sh [N]        # N hashes, default 1000000 (10000000 takes ~10 min
#                                     # and ~9 GiB on the Python side)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
venv=target/bench-venv
mkdir -p target
rust_out=$(cargo bench -q -p hashmesh-tests --bench matching -- --n "$n" --queries 20000 | tee /dev/stderr)

if [[ ! -x "$venv/bin/python" ]]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "threatexchange==1.2.17" "faiss-cpu==1.15.1" "pdqhash==0.2.8" "pillow" "numpy"
py_index=$(OMP_NUM_THREADS=1 "$venv/bin/python" bench/threatexchange_index.py --n "$n" | tee /dev/stderr)
py_hash=$("$venv/bin/python" bench/pdqhash_hashing.py target/bench-1mp.jpg | tee /dev/stderr)

field() { grep "^$1 " <<<"$2" | tr ' ' '\n' | grep "^$3=" | cut -d= -f2; }
ratio() { python3 -c "print(f'{float($1)/float($2):.1f}x')"; }
r_build=$(field rust_mih "$rust_out" build_s); t_build=$(field threatexchange "$py_index" build_s)
r_qps=$(field rust_mih "$rust_out" qps); t_qps=$(field threatexchange "$py_index" qps)
r_mem=$(field rust_mih "$rust_out" bytes_per_hash); t_mem=$(field threatexchange "$py_index" rss_bytes_per_hash)
r_ms=$(field rust_pdq_hash "$rust_out" ms); p_ms=$(field pdqhash "$py_hash" ms)
echo
echo "== $n PDQ hashes: queries on one core; hashmesh builds on every core, threatexchange on one =="
printf '%-28s %14s %16s %8s\n' "" hashmesh threatexchange ratio
printf '%-28s %14s %16s %8s\n' "index build (s)" "$r_build" "$t_build" "$(ratio "$t_build" "$r_build")"
printf '%-28s %14s %16s %8s\n' "queries/s at d<=31" "$r_qps" "$t_qps" "$(ratio "$r_qps" "$t_qps")"
printf '%-28s %14s %16s %8s\n' "index bytes/hash" "$r_mem" "$t_mem" "$(ratio "$t_mem" "$r_mem")"
printf '%-28s %14s %16s %8s\n' "1 MP JPEG hash (ms)" "$r_ms" "$p_ms (pdqhash)" "$(ratio "$p_ms" "$r_ms")"
