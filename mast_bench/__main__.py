"""``python -m mast_bench`` (what torchrun launches)."""

from mast_bench.cli import main

if __name__ == "__main__":
    main()
