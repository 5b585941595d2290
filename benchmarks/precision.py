"""fp32 against bf16 autocast: the reference36 recipe, N seeds each, test accuracy and training time per precision.

This is the measurement behind the `--precision` default. Each run is `emnist-cnn train` as a user runs it; the
results file is named after the CPU kind, since what bf16 costs depends on it (native on AMX and AVX512-BF16,
emulated and much slower on AVX2).

    python benchmarks/precision.py                  # reference36 on localbalanced, seeds 0-2, fp32 and bf16
    python benchmarks/precision.py --seeds 1 --epochs 2
    python benchmarks/precision.py --preset read-lines --split localbymerge --seeds 1 --epochs 0.15   # the line model
                                    # (its speed in lines/s; -> precision_read-lines-CPUKIND.json)
    python benchmarks/precision.py --preset read-lines --split localbymerge --seeds 1 --epochs 0.15 \
        --architectures crnn,crnn-wide  # two line models side by side, in turn, in one run
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mean_std, setup_data_dir, table, train_cli, write_results  # noqa: E402

PRECISIONS = ("fp32", "bf16")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="reference36")
    p.add_argument("--split", default="localbalanced")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=float, default=None, help="override the preset's epochs (a quicker check)")
    p.add_argument("--architectures", default=None,
                   help="comma-separated architectures to train in turn instead of the preset's own")
    args = p.parse_args()
    setup_data_dir()
    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    architectures = args.architectures.split(",") if args.architectures else [None]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for precision, architecture in itertools.product(PRECISIONS, architectures):  # in turn, side by side
            chosen = ["--architecture", architecture] if architecture else []
            runs = []
            for seed in range(args.seeds):
                run_dir, wall = train_cli(["--preset", args.preset, "--split", args.split, "--seed", str(seed),
                                           "--precision", precision, "--device", "cpu", *chosen, *extra], tmp)
                metrics = json.loads((run_dir / "metrics.json").read_text())
                rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
                config = json.loads((run_dir / "config.json").read_text())
                recorded, built = config["precision"], config["architecture"]
                # a character run's test accuracy and images/s; a line run's test accuracy is 1 - its CER on the
                # training mix, its speed in lines/s
                score = metrics["accuracy"] if "accuracy" in metrics else 1 - metrics["mixed"]["cer"]
                speed = rows[-1].get("images_per_second", rows[-1].get("lines_per_second"))
                runs.append({"seed": seed, "test_accuracy": score, "wall_seconds": wall, "per_second": speed,
                             "train_seconds": sum(r["train_seconds"] for r in rows), "recorded_precision": recorded})
                print(f"{precision} {built} seed {seed}: {score:.4f} in {wall:.0f} s, {speed:.0f}/s", flush=True)
            results.append({"precision": precision, "architecture": built, "runs": runs,
                            "test_accuracy": mean_std(r["test_accuracy"] for r in runs),
                            "train_seconds": mean_std(r["train_seconds"] for r in runs),
                            "per_second": mean_std(r["per_second"] for r in runs)})
    name = "precision" if args.preset == "reference36" else f"precision_{args.preset}"
    path = write_results(name, {"preset": args.preset, "split": args.split, "epochs": args.epochs,
                                "results": results}, per_machine=True)
    rows = [{"precision": r["precision"], "architecture": r["architecture"], "seeds": len(r["runs"]),
             "test accuracy": f"{r['test_accuracy']['mean']:.4f} ± {r['test_accuracy']['std']:.4f}",
             "training s": f"{r['train_seconds']['mean']:.0f} ± {r['train_seconds']['std']:.0f}",
             "per second (last epoch)": f"{r['per_second']['mean']:.0f}"} for r in results]
    print(table(rows, list(rows[0]), markdown=True))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
