#!/usr/bin/env bash
# The compose federation, tested for real: three member nodes in containers on their own
# bridge network, founded from scratch (keys, manifest, data dirs made here with the binary
# itself, nothing committed), then:
#
#   1. an entry submitted at node1 matches at node2 and node3;
#   2. node3 is cut off the network (`docker network disconnect`), both sides write, node3
#      is reconnected, and all three digests become equal;
#   3. node2 is killed (`docker kill`, SIGKILL) in the middle of a burst of submissions to
#      it, started again, and every submission it acknowledged is present at node2 and node1,
#      with all three digests equal;
#   4. the two followers behind node1 hold node1's replica, match what any member wrote, are
#      ready (/readyz), and refuse writes.
#
# Every wait polls with a deadline. Builds the image first (deploy/build-image.sh), and tears
# everything down on exit, pass or fail. Run from anywhere: `bash deploy/test-compose.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
log() { printf '[%4ds] %s\n' $(($(date +%s) - t0)) "$*"; }
fail() {
    log "FAIL: $*"
    exit 1
}

for tool in docker docker-compose curl jq readelf; do
    command -v "$tool" >/dev/null || fail "$tool is needed and not installed"
done

# --- image and binary -----------------------------------------------------------------------
export HASHMESH_IMAGE=${IMAGE:-hashmesh:latest}
bin=$(IMAGE=$HASHMESH_IMAGE bash deploy/build-image.sh | tail -n 1)
log "image $HASHMESH_IMAGE built"

# --- a project, network and data dirs of our own ----------------------------------------------
export COMPOSE_PROJECT_NAME=hashmesh-test-$$
export COMPOSE_FILE=$PWD/deploy/compose.yaml
work=$(mktemp -d /tmp/hashmesh-compose.XXXXXX)
export HASHMESH_FEDERATION_DIR=$work
# A /24 no other Docker network uses, so two runs (or other projects) can share the host.
taken=$(docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' $(docker network ls -q))
for _ in $(seq 50); do
    HASHMESH_SUBNET=172.28.$((RANDOM % 250))
    [[ " $taken " == *" $HASHMESH_SUBNET.0/24 "* ]] || break
done
export HASHMESH_SUBNET
ip() { echo "$HASHMESH_SUBNET.1$1"; }

cleanup() {
    local rc=$?
    if ((rc != 0)); then
        log "the last log lines of each node:"
        docker-compose logs --no-color --tail=25 2>&1 || true
    fi
    docker-compose down -v --remove-orphans >/dev/null 2>&1 || true
    rm -rf "$work"
    log "torn down ($([[ $rc == 0 ]] && echo pass || echo "fail, exit $rc"))"
}
trap cleanup EXIT

# --- founding: keygen, manifest, init — what founders run, with the binary itself -----------
members=()
for n in 1 2 3; do
    "$bin" keygen --json --out "$work/node$n.key" >"$work/node$n.keygen.json"
    members+=(--member "name=node$n,keygen=$work/node$n.keygen.json,address=/ip4/$(ip $n)/tcp/7700")
done
"$bin" manifest new --federation compose-test "${members[@]}" --out "$work/federation.toml" >/dev/null
declare -A token rpc
for n in 1 2 3; do
    # RPC on 0.0.0.0 inside the container: the published port forwards to the container's IP.
    "$bin" init --data-dir "$work/node$n" --key "$work/node$n.key" --manifest "$work/federation.toml" \
        --rpc-listen 0.0.0.0:7800 --json >"$work/node$n.init.json"
    token[$n]=$(jq -er .tokens.admin "$work/node$n.init.json")
    rm "$work/node$n.key"
done
# Followers of node1: data dirs from the same manifest (their own keys never sign), reading
# node1 with node1's matcher token.
export HASHMESH_FOLLOW_TOKEN=$(jq -er .tokens.matcher "$work/node1.init.json")
for f in 1 2; do
    "$bin" init --data-dir "$work/follower$f" --manifest "$work/federation.toml" \
        --follow http://node1:7800 --rpc-listen 0.0.0.0:7800 --json >"$work/follower$f.init.json"
    token[f$f]=$(jq -er .tokens.admin "$work/follower$f.init.json")
done
# The nodes run as the image's uid (10001); as another user, run them as that user instead.
if ((EUID == 0)); then
    chown -R 10001:10001 "$work"/node? "$work"/follower?
else
    export HASHMESH_UID=$(id -u) HASHMESH_GID=$(id -g)
fi
log "founded a federation of 3 on $HASHMESH_SUBNET.0/24"

docker-compose up -d >/dev/null 2>&1 || { docker-compose up -d; fail "docker-compose up"; }
# Nodes are named by number (1 is node1), followers as f1 and f2.
service() { if [[ $1 == f* ]]; then echo "follower${1#f}"; else echo "node$1"; fi; }
container() { docker-compose ps -q "$(service "$1")"; }
network=${COMPOSE_PROJECT_NAME//[^a-z0-9_-]/}_mesh
# The host port is Docker's choice and changes when a container restarts: read it again then.
find_port() { rpc[$1]=http://$(docker-compose port "$(service "$1")" 7800); }
for n in 1 2 3 f1 f2; do find_port "$n"; done
log "up: node1 ${rpc[1]}, node2 ${rpc[2]}, node3 ${rpc[3]}, followers of node1 ${rpc[f1]} ${rpc[f2]}"

# --- helpers ----------------------------------------------------------------------------------
api() {
    local n=$1 path=$2
    shift 2
    curl -sS --max-time 10 -H "Authorization: Bearer ${token[$n]}" "$@" "${rpc[$n]}$path"
}
# Polls `"$@"` every half second until it succeeds; fails the test after $2 seconds.
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local deadline=$(($(date +%s) + timeout))
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) < deadline)) || fail "timed out after ${timeout}s: $what"
        sleep 0.5
    done
}
new_md5() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }
# Submits an md5 entry at node $1; prints the acknowledged entry id, fails if not acknowledged.
submit() {
    api "$1" /v1/entries -H 'Content-Type: application/json' \
        -d "{\"fingerprints\":[\"md5:$2\"],\"category\":\"csam\"}" | jq -er .id
}
matches() {
    api "$1" /v1/match/hashes -H 'Content-Type: application/json' -d "{\"hashes\":[\"md5:$2\"]}" |
        jq -e --arg id "$3" '.results[0].hits | any(.entry == $id)'
}
has_entry() { api "$1" "/v1/entries/$2" -f -o /dev/null; }
own_log_confirmed() { api "$1" /v1/status | jq -e '.own_log == "confirmed"'; }
digest() { api "$1" /v1/status | jq -er .digest; }
converged() {
    local d1 d2 d3
    d1=$(digest 1) && d2=$(digest 2) && d3=$(digest 3) && [[ $d1 == "$d2" && $d1 == "$d3" ]]
}

for n in 1 2 3; do wait_for "node$n accepts writes (own log confirmed by a peer)" 60 own_log_confirmed "$n"; done
for n in 1 2 3; do
    wait_for "node$n healthy (HEALTHCHECK through the binary)" 60 \
        bash -c "[[ \$(docker inspect -f '{{.State.Health.Status}}' $(container "$n")) == healthy ]]"
done
log "all three nodes confirmed and healthy"

# --- 1. submit at node1, match at node2 and node3 ----------------------------------------------
hash=$(new_md5)
id=$(submit 1 "$hash") || fail "node1 did not acknowledge a submission"
for n in 2 3; do wait_for "entry $id from node1 matches at node$n" 30 matches "$n" "$hash" "$id"; done
log "1. submitted at node1 ($id), matches at node2 and node3"

# --- 2. partition node3, write on both sides, heal ------------------------------------------------
docker network disconnect "$network" "$(container 3)"
hash1=$(new_md5)
id1=$(submit 1 "$hash1") || fail "node1 refused a write during the partition"
# node3's published port goes with its network: talk to it from inside its container.
exec3() { docker exec "$(container 3)" /hashmesh --token "${token[3]}" "$@"; }
hash3=$(new_md5)
id3=$(exec3 --json submit --hash "md5:$hash3" --category csam | jq -er .id) ||
    fail "node3 refused a write while cut off"
# The cut is real: node1's write reaches node2 but not node3, and node3's reaches neither.
wait_for "entry $id1 from node1 at node2 during the partition" 30 has_entry 2 "$id1"
exec3 show "$id1" >/dev/null 2>&1 && fail "node3 has node1's entry although it is cut off"
has_entry 1 "$id3" 2>/dev/null && fail "node1 has node3's entry although node3 is cut off"
log "2. node3 cut off; wrote $id1 at node1 (reached node2 only) and $id3 at node3"
docker network connect --ip "$(ip 3)" "$network" "$(container 3)"
find_port 3
wait_for "node3 reachable again" 30 digest 3
wait_for "digests equal after the partition healed" 90 converged
for n in 1 2 3; do
    has_entry "$n" "$id1" || fail "node$n lacks $id1 after the partition healed"
    has_entry "$n" "$id3" || fail "node$n lacks $id3 after the partition healed"
done
exec3 show "$id1" >/dev/null || fail "node3 cannot be asked from inside its container"
log "2. reconnected: both writes on all three, digests equal ($(digest 1))"

# --- 3. kill node2 during a burst of submissions to it ------------------------------------------
acked=$work/acked
: >"$acked"
(
    for _ in $(seq 500); do
        id=$(submit 2 "$(new_md5)" 2>/dev/null) || break
        echo "$id" >>"$acked"
    done
) &
burst=$!
wait_for "20 acknowledged submissions at node2" 60 bash -c "(( \$(wc -l <'$acked') >= 20 ))"
docker kill "$(container 2)" >/dev/null
wait "$burst" || true
count=$(wc -l <"$acked")
log "3. killed node2 after $count acknowledged submissions"
((count < 500)) || fail "the burst finished before the kill; nothing was tested"
docker-compose start node2 >/dev/null 2>&1
find_port 2
wait_for "node2 accepts writes again after the restart" 90 own_log_confirmed 2
while read -r acked_id; do
    for n in 2 1; do
        wait_for "acknowledged $acked_id present at node$n" 30 has_entry "$n" "$acked_id"
    done
done <"$acked"
wait_for "digests equal after node2's restart" 90 converged
log "3. restarted node2: all $count acknowledged entries at node2 and node1, digests equal ($(digest 1))"

# --- 4. the followers behind node1 ----------------------------------------------------------------
ready() { curl -sS -f --max-time 10 "${rpc[$1]}/readyz" -o /dev/null; }
for f in f1 f2; do
    wait_for "follower $f holds node1's replica" 60 bash -c "[[ \$(curl -sS -H 'Authorization: Bearer ${token[$f]}' ${rpc[$f]}/v1/status | jq -r .digest) == $(digest 1) ]]"
    ready "$f" || fail "follower $f holds node1's replica but /readyz says it is not ready"
    matches "$f" "$hash" "$id" || fail "follower $f does not match node1's entry $id"
    matches "$f" "$hash3" "$id3" || fail "follower $f does not match node3's entry $id3"
    code=$(api "$f" /v1/entries -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"fingerprints\":[\"md5:$(new_md5)\"],\"category\":\"csam\"}")
    [[ $code == 403 ]] || fail "follower $f answered $code to a submission, not 403"
done
log "4. both followers hold node1's replica, match entries of node1 and node3, are ready, refuse writes"

log "PASS in $(($(date +%s) - t0))s"
