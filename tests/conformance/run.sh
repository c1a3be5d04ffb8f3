#!/usr/bin/env bash
# API conformance: schemathesis, every check, against a fresh node and the OpenAPI document it
# serves (made from the code, node/src/rpc). Fails on any failure schemathesis reports.
#
#   bash tests/conformance/run.sh                 # 100 cases an operation, a fixed seed
#   EXAMPLES=500 SEED=random bash tests/conformance/run.sh
#
# The settings, and the few refusals expected for rules JSON Schema cannot state, are in
# schemathesis.toml beside this script. schemathesis comes from PyPI into a throwaway venv
# under ${TMPDIR:-/tmp}, removed on exit; with Python or PyPI out of reach the run says so in
# one line and exits 0. The node is built with cargo (the debug profile CI's tests built).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
examples=${EXAMPLES:-100}
seed=${SEED:-20261128}
tool="schemathesis==4.32.5"

skip() {
    echo "conformance: skipped: $*"
    exit 0
}

command -v python3 >/dev/null || skip "no python3"
work=$(mktemp -d "${TMPDIR:-/tmp}/hashmesh-conformance.XXXXXX")
node_pid=
cleanup() {
    [[ -n $node_pid ]] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
python3 -m venv "$work/venv" >/dev/null 2>&1 || skip "python3 cannot make a venv (Debian: apt-get install python3-venv)"
if ! "$work/venv/bin/pip" install --quiet --disable-pip-version-check --timeout 20 --retries 1 "$tool" \
    >"$work/pip.log" 2>&1; then
    if grep -qiE 'NewConnectionError|name resolution|ConnectTimeout|timed out|unreachable|ProxyError|SSLError|Max retries' "$work/pip.log"; then
        skip "PyPI unreachable, cannot install $tool"
    fi
    cat "$work/pip.log" >&2
    exit 1
fi

(cd "$root" && cargo build --quiet --locked --bin hashmesh)
bin="${CARGO_TARGET_DIR:-$root/target}/debug/hashmesh"
"$bin" init --data-dir "$work/node" --rpc-listen 127.0.0.1:0 --json >"$work/init.json"
admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"]["admin"])' "$work/init.json")
# The p2p port: any free one, on loopback only.
HASHMESH_P2P_LISTEN='["/ip4/127.0.0.1/tcp/0"]' "$bin" run --data-dir "$work/node" --log-format json \
    >"$work/node.log" 2>&1 &
node_pid=$!

# Wait for the RPC address in the log, then for /readyz.
rpc=
for _ in $(seq 1 300); do
    rpc=$(grep -o '"rpc_addr":"[^"]*"' "$work/node.log" | head -n 1 | cut -d'"' -f4 || true)
    [[ -n $rpc ]] && curl -fsS "http://$rpc/readyz" >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log" >&2; echo "conformance: the node exited" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "http://$rpc/readyz" >/dev/null || { cat "$work/node.log" >&2; echo "conformance: the node is not ready" >&2; exit 1; }

echo "conformance: schemathesis ($tool), all checks, $examples cases an operation, seed $seed, against http://$rpc"
seed_args=()
[[ $seed == random ]] || seed_args=(--seed "$seed")
# One worker: Python 3.11's ast module is not thread-safe under hypothesis (a SystemError).
# From the throwaway dir, where schemathesis keeps its cache.
cd "$work"
"$work/venv/bin/st" --config-file "$here/schemathesis.toml" run "http://$rpc/openapi.json" \
    --checks all -H "Authorization: Bearer $admin" --max-examples "$examples" --workers 1 \
    "${seed_args[@]}" --no-color
