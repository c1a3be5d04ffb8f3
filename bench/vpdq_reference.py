#!/usr/bin/env python3
"""Benchmark python-threatexchange's vPDQ index on the data of tests/benches/video.rs.

Reads the dump `cargo bench -p hashmesh-tests --bench video -- --dump PATH` writes (stored
videos, query videos and the Rust index's match decisions; the format is in the bench's module
doc) and runs the reference on it, one thread:

  * build: `VPDQIndex.build` (threatexchange.extensions.vpdq.vpdq_index, the vPDQ index HMA
    uses) from every stored video's signal string, the JSON list of "hex,quality,timestamp"
    that `vpdq_to_json` writes, as HMA stores them. Videos with no frame of quality >= 50 are
    left out, as VPDQIndex.add refuses them (the Rust index skips them too). Inside, each
    distinct frame hash goes once into a faiss IndexBinaryFlat (an exhaustive scan).
  * query: `VPDQIndex.query(signal_str)` per query video, which dedupes and quality-filters
    the frames, range-searches them at distance <= 31 and keeps the videos with query
    percentage >= 80 and index percentage >= 0 (VPDQ_*_THRESHOLD in vpdq_util).

Then checks that its matches, with both percentages, are exactly the Rust index's decisions
for the same queries. The query path scans every frame for every query frame, so on a large
index `--queries` or `--budget-s` limit how many query videos run (the first ones, in order,
which alternate altered copies and unrelated videos); the output says how many.

Prints a machine-readable line starting with `threatexchange_vpdq `; exits 1 on a mismatch.
"""

import argparse
import gc
import json
import os
import resource
import struct
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import faiss  # noqa: E402
from threatexchange.extensions.vpdq.vpdq_index import VPDQIndex  # noqa: E402
from threatexchange.extensions.vpdq.vpdq_util import (  # noqa: E402
    VPDQ_DISTANCE_THRESHOLD,
    VPDQ_QUALITY_THRESHOLD,
    json_to_vpdq,
    vpdq_to_json,
)

MAGIC = b"HMVPDQ01"
FRAME_LEN = 32 + 1 + 4


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def read_dump(path):
    """Stored values, query values, and per query {video: (query %, candidate %)}."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise SystemExit(f"{path} is not a video bench dump (no {MAGIC!r} header)")
    n_videos, n_queries, max_distance = struct.unpack_from("<III", data, 8)
    pos = 20

    def values(n):
        nonlocal pos
        out = []
        for _ in range(n):
            (length,) = struct.unpack_from("<I", data, pos)
            out.append(data[pos + 4 : pos + 4 + length])
            pos += 4 + length
        return out

    videos = values(n_videos)
    queries = values(n_queries)
    decisions = []
    for _ in range(n_queries):
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        matches = {}
        for _ in range(count):
            video, q, c = struct.unpack_from("<Idd", data, pos)
            pos += 20
            matches[video] = (q, c)
        decisions.append(matches)
    if pos != len(data):
        raise SystemExit(f"{path}: {len(data) - pos} trailing bytes")
    return videos, queries, decisions, max_distance


def signal_str(value: bytes) -> str:
    """The JSON signal string of a packed vpdq value, as vpdq_to_json writes it."""
    features = []
    for off in range(0, len(value), FRAME_LEN):
        ts = int.from_bytes(value[off + 33 : off + 37], "big") / 1000
        # VpdqCompactFeature.__str__: f"{hex},{quality},{timestamp:.3}"
        features.append(f"{value[off : off + 32].hex()},{value[off + 32]},{ts:.3}")
    return json.dumps(features)


def comparable(value: bytes) -> bool:
    return any(value[off + 32] >= VPDQ_QUALITY_THRESHOLD for off in range(0, len(value), FRAME_LEN))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", help="the file `--dump` of the Rust video bench wrote")
    ap.add_argument("--queries", type=int, default=None, help="run at most this many query videos")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="stop starting query videos after this many seconds of querying")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)

    t = time.perf_counter()
    videos, queries, decisions, max_distance = read_dump(args.dump)
    if max_distance != VPDQ_DISTANCE_THRESHOLD:
        raise SystemExit(f"dump made at distance {max_distance}, VPDQIndex uses {VPDQ_DISTANCE_THRESHOLD}")
    signals = [signal_str(v) for v in videos]
    query_signals = [signal_str(q) for q in queries]
    indexable = [i for i, v in enumerate(videos) if comparable(v)]
    # The hand-written serialisation is the reference's own.
    assert vpdq_to_json(json_to_vpdq(signals[0])) == signals[0]
    input_frames = sum(len(v) // FRAME_LEN for v in videos)
    print(f"videos={len(videos)} queries={len(queries)} faiss={faiss.__version__} "
          f"python={sys.version.split()[0]}; loaded and serialised in {time.perf_counter() - t:.1f}s")
    del videos

    gc.collect()
    rss0 = rss_bytes()
    t = time.perf_counter()
    index = VPDQIndex.build((signals[i], i) for i in indexable)
    build_s = time.perf_counter() - t
    gc.collect()
    mem = rss_bytes() - rss0
    frames = sum(len(features) for features, _ in index._entry_idx_to_features_and_entries)
    distinct = index.index.faiss_index.ntotal
    print(f"build: {build_s:.2f}s ({len(indexable) / build_s:.0f} videos/s); {frames} comparable "
          f"frames of {input_frames} in {len(indexable)} videos, {distinct} distinct in faiss")
    print(f"memory: RSS delta {mem} bytes = {mem / frames:.1f} bytes/frame (the signal strings "
          f"themselves were loaded before)")

    limit = len(queries) if args.queries is None else min(args.queries, len(queries))
    times_ms = []
    mismatches = 0
    matches_total = 0
    started = time.perf_counter()
    for i in range(limit):
        if args.budget_s is not None and times_ms and time.perf_counter() - started >= args.budget_s:
            break
        t = time.perf_counter()
        result = index.query(query_signals[i])
        times_ms.append((time.perf_counter() - t) * 1e3)
        got = {m.metadata: (m.similarity_info.query_match_percent,
                            m.similarity_info.compared_match_percent) for m in result}
        matches_total += len(got)
        if got != decisions[i]:
            mismatches += 1
            print(f"query {i}: threatexchange {sorted(got.items())} != hashmesh "
                  f"{sorted(decisions[i].items())}", file=sys.stderr)
    ran = len(times_ms)
    times_ms.sort()
    mean_ms = sum(times_ms) / ran if ran else 0.0
    qps = 1e3 / mean_ms if mean_ms > 0 else 0.0
    p99_ms = times_ms[max(1, -(-ran * 99 // 100)) - 1] if ran else 0.0
    expected = sum(len(d) for d in decisions[:ran])
    partial = ""
    if ran < len(queries):
        partial = f" (only the first {ran} of {len(queries)}, as --queries or --budget-s said)"
    print(f"query d<={VPDQ_DISTANCE_THRESHOLD}: {ran} query videos{partial}: {qps:.2f} query videos/s, "
          f"mean {mean_ms:.1f} ms, p99 {p99_ms:.1f} ms; {matches_total} matches "
          f"(hashmesh: {expected}), queries whose decisions differ from hashmesh's: {mismatches}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"peak rss {maxrss / 2**30:.2f} GiB")
    print(f"threatexchange_vpdq videos={len(indexable)} frames={frames} distinct_frames={distinct} "
          f"build_s={build_s:.3f} rss_bytes_per_frame={mem / frames:.1f} queries_run={ran} "
          f"queries_total={len(queries)} qps={qps:.3f} mean_ms={mean_ms:.2f} p99_ms={p99_ms:.2f} "
          f"matches={matches_total} mismatches={mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
