#!/usr/bin/env bash
# Builds a statically linked `hashmesh` and the FROM scratch image around it.
#
#   bash deploy/build-image.sh            # image hashmesh:latest
#   IMAGE=hashmesh:dev bash deploy/build-image.sh
#
# glibc, linked statically (there is no musl target here): the node never resolves a name
# (the manifest's addresses are IPs), which is the one thing static glibc cannot do without
# its NSS plugins. The binary's path is printed on the last line for scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

image=${IMAGE:-hashmesh:latest}
target=x86_64-unknown-linux-gnu
# An explicit RUSTFLAGS replaces .cargo/config.toml's, so POPCNT (PDQ matching) is repeated.
export RUSTFLAGS="-C target-feature=+crt-static,+popcnt"
# No debug lines and no symbols: a smaller image; panics still name the message.
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
cargo build --release --locked --target "$target" --bin hashmesh >&2

bin=${CARGO_TARGET_DIR:-target}/$target/release/hashmesh
# A static binary needs no shared library: no NEEDED entry in its dynamic section.
if readelf -d "$bin" | grep -q NEEDED; then
    echo "build-image: $bin needs shared libraries; the scratch image needs a static binary" >&2
    exit 1
fi

# A tiny build context: the binary and an empty data dir, not the repository.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$bin" "$stage/hashmesh"
mkdir -m 0700 "$stage/data"
cp deploy/Dockerfile "$stage/Dockerfile"
# The legacy builder: Docker 20.10 here, and no buildx plugin.
# Its output (and the deprecation notice) only when the build fails.
if ! out=$(DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --quiet --tag "$image" "$stage" 2>&1); then
    echo "$out" >&2
    exit 1
fi

size=$(docker image inspect -f '{{.Size}}' "$image")
echo "build-image: $image, $((size / 1024 / 1024)) MiB ($size bytes)" >&2
echo "$bin"
