"""Time to accuracy, airbench style: each preset run as a user runs it, N seeds, mean ± std.

Wall clock is measured around the whole `emnist-cnn train` process (interpreter start, imports, data loading from the
array cache, training, final test evaluation). The array cache is warmed once before the timed runs.

    python benchmarks/time_to_accuracy.py               # fast36 and fast-digits, 3 seeds each
    python benchmarks/time_to_accuracy.py --seeds 5
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, mean_std, setup_data_dir, table, train_cli, write_results  # noqa: E402

# (preset, split, extra CLI args, [(target test accuracy, time budget in seconds)])
RUNS = [
    ("fast36", "localbalanced", [], None),
    ("fast-digits", "localdigits", [], [(0.9775, 10.0)]),
    ("fast-digits-99", "localdigits", [], [(0.990, 60.0)]),
]


def reference36_bar() -> float | None:
    """The reference36 recipe's own test accuracy on localbalanced 0-35, from benchmarks/results/originals.json."""
    try:
        results = json.loads((RESULTS / "originals.json").read_text())["results"]
        return next(r["accuracy"] for r in results if r["preset"] == "reference36")
    except (OSError, StopIteration, KeyError):
        return None


def timed_run(preset: str, split: str, seed: int, extra: list[str], out_dir: str) -> dict:
    run_dir, wall = train_cli(["--preset", preset, "--split", split, "--seed", str(seed), *extra], out_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"seed": seed, "wall_seconds": wall, "test_accuracy": metrics["accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    setup_data_dir()
    from emnist_cnn.data import load_split
    for split in {r[1] for r in RUNS}:
        load_split(split, download=False)  # warm the parsed-array cache
    bar = reference36_bar()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, split, extra, targets in RUNS:
            targets = targets or ([(bar, 45.0)] if bar is not None else [])
            runs = [timed_run(preset, split, seed, extra, tmp) for seed in range(args.seeds)]
            acc, wall = mean_std(r["test_accuracy"] for r in runs), mean_std(r["wall_seconds"] for r in runs)
            results.append({"preset": preset, "split": split, "runs": runs, "test_accuracy": acc,
                            "wall_seconds": wall,
                            "targets": [{"accuracy": a, "seconds": s, "met": acc["mean"] >= a and wall["mean"] <= s}
                                        for a, s in targets]})
    path = write_results("time_to_accuracy", {"seeds": args.seeds, "reference36_local_accuracy": bar,
                                              "results": results}, per_machine=True)
    rows = [{"preset": r["preset"], "split": r["split"],
             "test accuracy": f"{r['test_accuracy']['mean']:.4f} ± {r['test_accuracy']['std']:.4f}",
             "wall s": f"{r['wall_seconds']['mean']:.1f} ± {r['wall_seconds']['std']:.1f}",
             "target": "; ".join(f"{t['accuracy']:.4f} in {t['seconds']:.0f}s: {'met' if t['met'] else 'MISSED'}"
                                 for t in r["targets"])} for r in results]
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
