#!/usr/bin/env bash
# Checks the Kubernetes manifests in this folder offline, with no cluster:
#
#   1. yamllint --strict: well-formed YAML, no duplicate keys, consistent layout;
#   2. kubernetes-validate --strict against the JSON schemas it bundles, for the oldest
#      Kubernetes these manifests are written for (1.27: the StatefulSet's PVC retention
#      policy) and the newest it knows; any field a schema does not know is an error, and so
#      is a kind it has no schema for (it only warns);
#   3. the same for `kubectl kustomize` output, when kubectl is installed (the kustomization
#      builds);
#   4. crosscheck.py: names that must agree between objects (selectors, named ports, Secret
#      keys, the --follow Service, HASHMESH_ variables) and the security settings.
#
# Both tools come from PyPI into a throwaway venv under ${TMPDIR:-/tmp}, removed on exit.
# Exit 0 when all pass, or with one "skipped" line when Python or PyPI cannot be had;
# 1 on any failure. Run from anywhere: `bash deploy/k8s/validate.sh`.
set -euo pipefail
cd "$(dirname "$0")"

t0=$(date +%s)
manifests=(member.yaml followers.yaml config.yaml)
versions=(1.27.0 1.37.0)
tools=(kubernetes-validate==1.37.0 yamllint==1.38.0)

skip() {
    echo "k8s validate: skipped: $*"
    exit 0
}

command -v python3 >/dev/null || skip "no python3"
venv=$(mktemp -d "${TMPDIR:-/tmp}/hashmesh-k8s-validate.XXXXXX")
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot make a venv (Debian: apt-get install python3-venv)"
# A short timeout: with PyPI out of reach, skip in under a minute rather than hang.
if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --timeout 20 --retries 1 \
    "${tools[@]}" >"$venv/pip.log" 2>&1; then
    if grep -qiE 'NewConnectionError|NameResolution|name resolution|ConnectTimeout|timed out|unreachable|ProxyError|SSLError|Max retries' \
        "$venv/pip.log"; then
        skip "PyPI unreachable ($(grep -oiE 'NewConnectionError|NameResolution|name resolution|ConnectTimeout|timed out|unreachable|ProxyError|SSLError|Max retries' "$venv/pip.log" | head -n 1))"
    fi
    cat "$venv/pip.log" >&2
    echo "k8s validate: FAIL: pip install ${tools[*]}" >&2
    exit 1
fi

failed=0
fail() {
    echo "k8s validate: FAIL: $*" >&2
    failed=1
}

# 1. YAML
"$venv/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 110}}}' \
    ./*.yaml || fail "yamllint"

# 2. and 3. Schemas. kubernetes-validate exits 0 on a kind it has no schema for (a
# misspelt apiVersion, say), so its WARN lines count as failures too.
schemas() {
    local out rc=0
    out=$("$venv/bin/kubernetes-validate" --strict --quiet "${versions[@]/#/-k}" "$@" 2>&1) || rc=$?
    [[ -z $out ]] || echo "$out"
    ((rc == 0)) && ! grep -qE '^(WARN|ERROR|FATAL)' <<<"$out"
}
schemas "${manifests[@]}" || fail "kubernetes-validate"
if command -v kubectl >/dev/null; then
    if kubectl kustomize . >"$venv/rendered.yaml"; then
        schemas "$venv/rendered.yaml" || fail "kubernetes-validate of kubectl kustomize's output"
        kustomize="and kubectl kustomize's output"
    else
        fail "kubectl kustomize"
    fi
else
    kustomize="(kubectl kustomize not run: no kubectl)"
fi

# 4. Names across objects.
"$venv/bin/python" crosscheck.py . || fail "crosscheck"

((failed == 0)) || exit 1
objects=$(grep -c '^kind:' "${manifests[@]}" | awk -F: '{n += $2} END {print n}')
echo "k8s validate: ok: ${manifests[*]} ($objects objects) $kustomize, strict schemas of" \
    "Kubernetes ${versions[*]}, yamllint, crosscheck; $(($(date +%s) - t0))s"
