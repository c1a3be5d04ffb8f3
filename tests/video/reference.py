#!/usr/bin/env python3
"""Hashes the test videos with Meta's vpdq (PyPI) and matches them with
python-threatexchange's brute-force vPDQ matcher: the expected values the node's vPDQ tests
compare against (node/tests/fixtures/vpdq/reference.json).

    python reference.py VIDEO_DIR > reference.json

Run by tests/video/reference.sh, which installs both into a throwaway venv.
"""

import json
import sys
from pathlib import Path

import vpdq
from threatexchange.extensions.vpdq.vpdq_brute_matcher import match_VPDQ_hash_brute
from threatexchange.extensions.vpdq.vpdq_util import (
    VPDQ_DISTANCE_THRESHOLD,
    VPDQ_INDEX_MATCH_THRESHOLD_PERCENT,
    VPDQ_QUALITY_THRESHOLD,
    VPDQ_QUERY_MATCH_THRESHOLD_PERCENT,
    VpdqCompactFeature,
)

# Each copy is the query against the source as the stored (candidate) video, as a platform
# checks an upload against the list; the source against each copy is the other direction.
STORED = "source.mp4"


def main() -> int:
    folder = Path(sys.argv[1])
    videos = {}
    features = {}
    for path in sorted(folder.iterdir()):
        hashes = vpdq.computeHash(str(path), seconds_per_hash=1)
        features[path.name] = [VpdqCompactFeature.from_vpdq_feature(f) for f in hashes]
        videos[path.name] = [[f.hex, f.quality, f.frame_number, round(f.timestamp, 3)] for f in hashes]
    matches = []
    for name in sorted(features):
        for query, candidate in ((name, STORED), (STORED, name)):
            result = match_VPDQ_hash_brute(
                features[query], features[candidate], VPDQ_QUALITY_THRESHOLD, VPDQ_DISTANCE_THRESHOLD
            )
            matched = (
                result.query_match_percent >= VPDQ_QUERY_MATCH_THRESHOLD_PERCENT
                and result.compared_match_percent >= VPDQ_INDEX_MATCH_THRESHOLD_PERCENT
            )
            matches.append(
                {
                    "query": query,
                    "candidate": candidate,
                    "query_percent": result.query_match_percent,
                    "candidate_percent": result.compared_match_percent,
                    "match": matched,
                }
            )
    json.dump(
        {
            "reference": f"vpdq {getattr(vpdq, '__version__', '0.2.5')}, threatexchange brute matcher",
            "thresholds": {
                "quality": VPDQ_QUALITY_THRESHOLD,
                "distance": VPDQ_DISTANCE_THRESHOLD,
                "query_percent": VPDQ_QUERY_MATCH_THRESHOLD_PERCENT,
                "candidate_percent": VPDQ_INDEX_MATCH_THRESHOLD_PERCENT,
            },
            "videos": videos,
            "matches": matches,
        },
        sys.stdout,
        indent=1,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
