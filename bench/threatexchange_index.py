#!/usr/bin/env python3
"""Benchmark python-threatexchange's PDQ index on random 256-bit hashes.

Mirrors examples/bench_pdq_index.rs: N random hashes from a seeded RNG,
queries at distance <= 31, half near-duplicates (0..=31 flipped bits of a
stored hash) and half random, one thread.

Measures two things:
  * `PDQIndex` (threatexchange.signal_type.pdq.pdq_index), the class the
    threatexchange CLI uses: a PDQMultiHashIndex = faiss IndexBinaryMultiHash
    with 16 hash maps of 16 bits, searched with nflip = 31 // 16 = 1, the same
    pigeonhole scheme as the Rust MihIndex. Built from hex strings, queried
    one hash at a time through PDQIndex.query, as the CLI does.
  * The bare faiss IndexBinaryMultiHash(256, 16, 16) fed numpy arrays and
    queried in one batch, i.e. the engine without the Python wrapper.

Prints machine-readable lines starting with `threatexchange ` and
`faiss_multihash `.
"""

import argparse
import gc
import os
import resource
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from threatexchange.signal_type.pdq.pdq_index import PDQIndex  # noqa: E402

THRESHOLD = 31


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def make_queries(rng, hashes, nq):
    """Half near-duplicates of stored hashes (0..=31 flipped bits), half random."""
    n = hashes.shape[0]
    qs = rng.integers(0, 256, size=(nq, 32), dtype=np.uint8)
    for i in range(0, nq, 2):
        q = hashes[rng.integers(0, n)].copy()
        k = int(rng.integers(0, 32))
        bits = rng.choice(256, size=k, replace=False)
        for b in bits:
            q[b // 8] ^= np.uint8(1 << (b % 8))
        qs[i] = q
    return qs


def brute_force(hashes, qs):
    """Exact range search with faiss' flat (exhaustive) binary index."""
    flat = faiss.IndexBinaryFlat(256)
    flat.add(hashes)
    lims, dists, ids = flat.range_search(qs, THRESHOLD + 1)
    return [
        set(zip(ids[lims[i] : lims[i + 1]].tolist(), dists[lims[i] : lims[i + 1]].tolist()))
        for i in range(qs.shape[0])
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--recall-sample", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-wrapper", action="store_true",
                    help="only measure the bare faiss index")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)

    rng = np.random.default_rng(args.seed)
    hashes = rng.integers(0, 256, size=(args.n, 32), dtype=np.uint8)
    qs = make_queries(rng, hashes, args.queries)
    q_hex = [bytes(q).hex() for q in qs]
    print(f"n={args.n} queries={args.queries} faiss={faiss.__version__} python={sys.version.split()[0]}")

    # Expected results for the recall sample.
    sample = min(args.recall_sample, args.queries)
    t = time.perf_counter()
    expected = brute_force(hashes, qs[:sample])
    print(f"brute force (faiss flat) on {sample} queries: {time.perf_counter() - t:.2f}s")

    def recall_of(got):
        exp_total = sum(len(e) for e in expected)
        hit = sum(len(e & g) for e, g in zip(expected, got))
        return 1.0 if exp_total == 0 else hit / exp_total, hit, exp_total

    # --- bare faiss IndexBinaryMultiHash, numpy in, batch query ---
    gc.collect()
    rss0 = rss_bytes()
    t = time.perf_counter()
    mh = faiss.IndexBinaryMultiHash(256, 16, 16)
    mh.add(hashes)
    build_s = time.perf_counter() - t
    mem = rss_bytes() - rss0
    mh.nflip = THRESHOLD // 16
    t = time.perf_counter()
    lims, dists, ids = mh.range_search(qs, THRESHOLD + 1)
    qps = args.queries / (time.perf_counter() - t)
    got = [
        set(zip(ids[lims[i] : lims[i + 1]].tolist(), dists[lims[i] : lims[i + 1]].tolist()))
        for i in range(sample)
    ]
    recall, hit, tot = recall_of(got)
    print(f"faiss IndexBinaryMultiHash: build {build_s:.2f}s, {qps:.0f} queries/s (batch), "
          f"rss delta {mem / args.n:.1f} bytes/hash, recall {recall:.4f} ({hit}/{tot})")
    print(f"faiss_multihash n={args.n} build_s={build_s:.3f} qps={qps:.0f} "
          f"rss_bytes_per_hash={mem / args.n:.1f} recall={recall:.4f}")
    del mh, lims, dists, ids
    gc.collect()

    if args.skip_wrapper:
        return 0

    # --- threatexchange PDQIndex, as the CLI uses it ---
    hex_hashes = [bytes(h).hex() for h in hashes]
    gc.collect()
    rss0 = rss_bytes()
    t = time.perf_counter()
    index = PDQIndex(entries=zip(hex_hashes, range(args.n)))
    build_s = time.perf_counter() - t
    gc.collect()
    mem = rss_bytes() - rss0
    t = time.perf_counter()
    results = [index.query(h) for h in q_hex]
    qps = args.queries / (time.perf_counter() - t)
    got = [
        {(m.metadata, m.similarity_info.distance) for m in r} for r in results[:sample]
    ]
    recall, hit, tot = recall_of(got)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"threatexchange PDQIndex: build {build_s:.2f}s, {qps:.0f} queries/s (one at a time), "
          f"rss delta {mem / args.n:.1f} bytes/hash (includes the Python list of hex strings "
          f"the index keeps), recall {recall:.4f} ({hit}/{tot}), peak rss {maxrss / 2**30:.2f} GiB")
    print(f"threatexchange n={args.n} build_s={build_s:.3f} qps={qps:.0f} "
          f"rss_bytes_per_hash={mem / args.n:.1f} recall={recall:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
