"""Reproduce the two original recipes on the local corpora (the official training images are not here).

    python benchmarks/reproduce_originals.py            # reference36 on localbalanced 0-35, reference-digits on localdigits
    python benchmarks/reproduce_originals.py --official # the same presets on the official splits (needs the files)
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import setup_data_dir, table, write_results  # noqa: E402

from emnist_cnn import train  # noqa: E402
from emnist_cnn.config import get_preset  # noqa: E402

ORIGINAL = {"reference36": 0.908, "reference-digits": 0.9775}  # the original projects' test accuracy, official data


def run(preset: str, split: str | None, out_dir: str) -> dict:
    cfg = get_preset(preset).replace(out_dir=out_dir, **({"split": split} if split else {}))
    run_dir = train(cfg, progress=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_seconds = sum(r["train_seconds"] for r in rows)
    return {"preset": preset, "split": cfg.split, "classes": cfg.classes, "resplit": cfg.resplit,
            "test_images": metrics["n"], "accuracy": metrics["accuracy"], "top5_accuracy": metrics["top5_accuracy"],
            "precision_macro": metrics["precision_macro"], "recall_macro": metrics["recall_macro"],
            "f1_macro": metrics["f1_macro"], "roc_auc_macro": metrics["roc_auc_macro"],
            "training_seconds": train_seconds, "images_per_second": sum(r["images_per_second"] for r in rows) / len(rows),
            "precision": json.loads((run_dir / "config.json").read_text())["_environment"]["precision"],
            "original_official_accuracy": ORIGINAL[preset]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--official", action="store_true", help="official splits (balanced36, digits) instead of local")
    args = p.parse_args()
    setup_data_dir()
    splits = {"reference36": None, "reference-digits": None} if args.official else \
        {"reference36": "localbalanced", "reference-digits": "localdigits"}
    with tempfile.TemporaryDirectory() as tmp:
        results = [run(preset, split, tmp) for preset, split in splits.items()]
    name = "originals_official" if args.official else "originals"
    path = write_results(name, {"data": "official" if args.official else "local", "results": results})
    for r in results:
        for k in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "original_official_accuracy"):
            r[k] = f"{r[k]:.4f}"
        r["training_seconds"] = f"{r['training_seconds']:.0f}"
        r["images_per_second"] = f"{r['images_per_second']:.0f}"
    print(table(results, ["preset", "split", "accuracy", "precision_macro", "recall_macro", "f1_macro",
                          "training_seconds", "images_per_second", "original_official_accuracy"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
