"""Data loading: a split parsed from its .gz files vs memory-mapped from the parsed-array cache, and the peak
memory of loading + training on the largest local corpus.

    python benchmarks/data_load.py
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mean_std, setup_data_dir, table, write_results  # noqa: E402

SPLITS = ["localdigits", "localbymerge"]
LOAD = ("import time, sys; from emnist_cnn.data import load_split; t = time.perf_counter(); "
        "s = load_split(sys.argv[1], download=False); s.train_images.sum(); s.test_images.sum(); "
        "print(time.perf_counter() - t)")  # the sums touch every pixel, so a memory map is really read


def load_seconds(split: str, cache: str) -> float:
    """Seconds to load (and touch every pixel of) a split in a fresh process with the given cache dir, after the
    imports (torch alone takes over a second to import)."""
    env = {**os.environ, "EMNIST_CNN_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", LOAD, split], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    setup_data_dir()
    results = []
    for split in SPLITS:
        cold, warm = [], []
        for _ in range(3):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(load_seconds(split, cache))  # empty cache: verify sha256, gunzip, parse, write cache
                warm.append(load_seconds(split, cache))  # cache filled: memory-map the .npy
        results.append({"split": split, "from_gz_seconds": mean_std(cold), "from_cache_seconds": mean_std(warm)})

    # Peak resident memory of one process that loads localbymerge and trains cnn3 on all of it for one epoch.
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "emnist_cnn", "train", "--split", "localbymerge", "--model", "cnn3",
               "--epochs", "1", "--batch-size", "256", "--out-dir", out, "--quiet", "--no-report"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        train_wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    path = write_results("data_load", {"results": results, "train_localbymerge": {
        "command": " ".join(cmd[1:]), "wall_seconds": train_wall, "peak_rss_mb": peak_mb}})
    rows = [{"split": r["split"], "from .gz s": f"{r['from_gz_seconds']['mean']:.2f} ± {r['from_gz_seconds']['std']:.2f}",
             "from cache s": f"{r['from_cache_seconds']['mean']:.3f} ± {r['from_cache_seconds']['std']:.3f}",
             "speed-up": f"{r['from_gz_seconds']['mean'] / r['from_cache_seconds']['mean']:.0f}x"} for r in results]
    print(table(rows, list(rows[0])))
    print(f"load + train 1 epoch on localbymerge: peak RSS {peak_mb:.0f} MB, {train_wall:.0f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
