"""Regenerate (or, with --check, verify) the committed validation splits under downstream/splits.

    python scripts/make_splits.py            # write every declared seeded split and CHECKSUMS
    python scripts/make_splits.py --check    # exit 1 if a file is missing, modified or differs from a fresh draw

The draws are deterministic, so a rewrite leaves unchanged files byte-identical.
"""

from __future__ import annotations

import argparse
import sys

from mast_bench.data.splits.files import SPLITS_DIR, verify_committed_splits, write_committed_splits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    args = parser.parse_args()
    if args.check:
        problems = verify_committed_splits()
        for p in problems:
            print(p)
        print("splits: OK" if not problems else f"splits: {len(problems)} problems")
        return 1 if problems else 0
    for path in write_committed_splits():
        print(f"wrote {path.relative_to(SPLITS_DIR)}")
    print(f"wrote {SPLITS_DIR / 'CHECKSUMS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
