#!/usr/bin/env python3
"""PDQ hashing with the reference (pdqhash + Pillow), decode included: median ms per image.

Usage: python pdqhash_hashing.py FILE.jpg [--runs 50]
Prints `pdqhash ms=...` for bench/matching.sh.
"""

import argparse
import statistics
import time

import numpy as np
import pdqhash
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    times = []
    quality = 0
    for _ in range(args.runs):
        t = time.perf_counter()
        with Image.open(args.file) as img:
            pixels = np.asarray(img.convert("RGB"))
        _, quality = pdqhash.compute(pixels)
        times.append((time.perf_counter() - t) * 1e3)
    median = statistics.median(times)
    print(f"pdqhash + Pillow, decode included: {median:.1f} ms median over {args.runs} (quality {quality})")
    print(f"pdqhash ms={median:.2f}")


if __name__ == "__main__":
    main()
