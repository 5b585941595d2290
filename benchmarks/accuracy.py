"""Accuracy: the best-* presets against the original recipes and a ResNet-18, N seeds each, on the local corpora.

    python benchmarks/accuracy.py                      # every comparison, 3 seeds -> results/accuracy.json
    python benchmarks/accuracy.py --only balanced36    # one comparison (or --only balanced36/best36: one recipe)
    python benchmarks/accuracy.py --seeds 1            # fewer seeds

Each run is `emnist-cnn train` as a user runs it (a subprocess), then its metrics.json. The file is rewritten after
every finished run and runs already in it are not repeated (unless --again), so an interrupted benchmark goes on
where it stopped and the seeds of a long comparison can be run on different days. Accuracies are on the LOCAL
corpora (../shared/data/emnist-local): not comparable with published results on the official splits.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, mean_std, setup_data_dir, table, train_cli, write_results  # noqa: E402

# A practitioner's ResNet-18 recipe: Adam 1e-3, cosine, the reference rotation, batch 128. Its epochs are few
# because ResNet-18 trains at about 270 images/s on this 2-core CPU (11M parameters to update every step).
RESNET18 = ["--model", "resnet18", "--dropout", "0", "--optimizer", "adam", "--lr", "1e-3", "--scheduler", "cosine",
            "--batch-size", "128", "--normalize-mean", "0.17", "--normalize-std", "0.33", "--interpolation", "bilinear"]

# best36's search ran at BEST's batch size and learning rate before the preset moved to batch 64
B128 = ["--batch-size", "128", "--lr", "4e-3"]

# comparison -> (what it is, split, [(recipe label, preset, extra CLI args)], target)
COMPARISONS = {
    "balanced36": ("localbalanced classes 0-35, pooled and split 70/20/10 (as the original project)",
                   "localbalanced", [
                       ("reference36", "reference36", []),
                       ("resnet18", "reference36", [*RESNET18, "--epochs", "3"]),
                       ("best36", "best36", []),
                       # the search that led to best36: it began as BEST at 16 epochs (batch 128, random erasing)
                       ("best36 at batch 128", "best36", B128),
                       ("best36 at batch 128, 40 epochs", "best36", [*B128, "--epochs", "40"]),
                       ("best36 at batch 128, vgg-emnist-wide", "best36", [*B128, "--model", "vgg-emnist-wide"]),
                       ("best36 at batch 128, with elastic warps", "best36", [*B128, "--elastic", "0.05"]),
                       ("best36 at batch 128, with random erasing", "best36", [*B128, "--erase", "0.25"]),
                       ("best36 at batch 128, with random erasing, 40 epochs", "best36",
                        [*B128, "--erase", "0.25", "--epochs", "40"]),
                       ("best36 at batch 128, with random erasing, 60 epochs", "best36",
                        [*B128, "--erase", "0.25", "--epochs", "60"]),
                       ("best36 at batch 128, with random erasing, weight decay 0.05", "best36",
                        [*B128, "--erase", "0.25", "--weight-decay", "0.05"]),
                   ], "best36 >= reference36 + 3.0 points"),
    "balanced47": ("localbalanced, 47 classes, its own test set", "localbalanced", [
        ("cnn3 (reference36 recipe)", "reference36", ["--classes", "", "--resplit", ""]),
        ("resnet18", "reference36", ["--classes", "", "--resplit", "", *RESNET18, "--epochs", "3"]),
        ("best-balanced", "best-balanced", []),
    ], "best-balanced >= resnet18 + 1.0 and >= cnn3 (reference36 recipe) + 3.0 points"),
    "digits": ("localdigits", "localdigits", [
        ("reference-digits", "reference-digits", []),
        ("best-digits", "best-digits", []),
    ], "best-digits >= 0.996"),
    "bymerge": ("localbymerge, 47 classes, 221k training images", "localbymerge", [
        ("best-bymerge", "best-bymerge", []),
    ], "per-class recall reported"),
    # bf16 must not cost accuracy (the performance issue). On a CPU without native bf16 (this AVX2 machine) autocast
    # is emulated and ~12x slower: about 40 minutes a seed.
    "precision36": ("localbalanced classes 0-35, reference36 in fp32 and in bf16 autocast", "localbalanced", [
        ("reference36 fp32", "reference36", ["--precision", "fp32"]),
        ("reference36 bf16", "reference36", ["--precision", "bf16"]),
    ], "bf16 within the seed-to-seed spread of fp32"),
}


def train_run(preset: str, split: str, extra: list[str], seed: int, out_dir: str) -> dict:
    args = ["--preset", preset, "--split", split, *extra, "--seed", str(seed)]
    run_dir, wall = train_cli(args, out_dir)
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    meta = json.loads((run_dir / "model.json").read_text())
    return {"seed": seed, "command": " ".join(["emnist-cnn", "train", *args]), "run_dir": str(run_dir),
            "parameters": meta.get("parameters"), "architecture": meta.get("architecture"),
            "train_minutes": sum(e["train_seconds"] for e in epochs) / 60, "wall_minutes": wall / 60,
            **test_results(run_dir)}


def test_results(run_dir: Path) -> dict:
    """From a run's metrics.json: accuracy, macro F1, errors, per-class recall and the most frequent confusions."""
    from emnist_cnn.evaluation.report import confused_pairs
    m = json.loads((run_dir / "metrics.json").read_text())
    classes = [c["class"] for c in m["per_class"]]
    return {"accuracy": m["accuracy"], "f1_macro": m["f1_macro"], "errors": round(m["n"] * (1 - m["accuracy"])),
            "recall": {c["class"]: c["recall"] for c in m["per_class"]},
            "confused_pairs": [{"true": classes[t], "predicted": classes[p], "count": n}
                               for t, p, n in confused_pairs(np.asarray(m["confusion_matrix"]), 12)]}


def evaluate_runs(run_dirs: list[str], part: str = "test", tta: bool = False) -> float:
    """Accuracy of kept runs by evaluate_models (what `emnist-cnn evaluate` computes): one run with shift TTA or
    on its validation part, or an ensemble. It writes no file."""
    from emnist_cnn import evaluate_models
    return evaluate_models(run_dirs, part, tta=tta, device="cpu")["accuracy"]


def validation_images(run_dir: str) -> int:
    """How many images the run held out for validation (model.json records the dataset it was cut into)."""
    return json.loads((Path(run_dir) / "model.json").read_text())["dataset"].get("val", 0)


def summary(runs: list[dict], ensemble: dict | None) -> dict:
    tta = [r["tta_accuracy"] for r in runs if "tta_accuracy" in r]
    val = [r["val_accuracy"] for r in runs if "val_accuracy" in r]
    return {**({"tta_accuracy": mean_std(tta)} if len(tta) == len(runs) else {}),
            **({"val_accuracy": mean_std(val)} if len(val) == len(runs) else {}),
            **({"ensemble": ensemble} if ensemble else {}),
            "accuracy": mean_std(r["accuracy"] for r in runs), "f1_macro": mean_std(r["f1_macro"] for r in runs),
            "train_minutes": mean_std(r["train_minutes"] for r in runs),
            # a timing's best estimate is its fastest repeat: other work on the machine only ever slows a run down
            "train_minutes_fastest": min(r["train_minutes"] for r in runs), "parameters": runs[0]["parameters"],
            "architecture": runs[0]["architecture"], "seeds": [r["seed"] for r in runs],
            "command": runs[0]["command"].replace(f"--seed {runs[0]['seed']}", "--seed SEED")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--only", nargs="*", default=[], help="COMPARISON or COMPARISON/RECIPE")
    p.add_argument("--again", action="store_true", help="re-run runs that are already in the results")
    p.add_argument("--keep", metavar="DIR", help="keep the run directories under DIR (default: a temporary one); "
                   "scripts/build_pretrained.py NAME --from RUN_DIR packages a kept best-* run")
    args = p.parse_args()
    setup_data_dir()
    path = RESULTS / "accuracy.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    done, ensembles = previous.get("runs", {}), previous.get("ensembles", {})
    selected = lambda comp, label: not args.only or comp in args.only or f"{comp}/{label}" in args.only  # noqa: E731

    def save() -> Path:
        comparisons = {}
        for comp, (what, split, recipes, target) in COMPARISONS.items():
            rows = {label: summary(done[f"{comp}/{label}"], ensembles.get(f"{comp}/{label}"))
                    for label, *_ in recipes if done.get(f"{comp}/{label}")}
            comparisons[comp] = {"data": what, "split": split, "target": target, "recipes": rows}
        return write_results("accuracy", {"note": "accuracy on the LOCAL corpora, not the official EMNIST splits",
                                          "comparisons": comparisons, "runs": done, "ensembles": ensembles})

    with tempfile.TemporaryDirectory() as tmp:
        out_root = Path(args.keep or tmp)
        for comp, (what, split, recipes, target) in COMPARISONS.items():
            for label, preset, extra in recipes:
                if not selected(comp, label):
                    continue
                key = f"{comp}/{label}"
                for seed in range(args.seeds):
                    runs = done.setdefault(key, [])
                    if not args.again and any(r["seed"] == seed for r in runs):
                        continue
                    # a directory name per recipe: "cnn3 (reference36 recipe)" -> cnn3-reference36-recipe
                    slug = re.sub(r"[^\w.-]+", "-", label).strip("-")
                    run = train_run(preset, split, extra, seed, str(out_root / comp / slug))
                    done[key] = [r for r in runs if r["seed"] != seed] + [run]
                    print(f"{key} seed {seed}: {run['accuracy']:.4f} in {run['train_minutes']:.1f} min", flush=True)
                    save()
        # While run directories exist: fill in what older records lack, and for best-* runs shift TTA and the
        # ensemble of all their seeds.
        for key, runs in done.items():
            if not selected(*key.split("/")):
                continue
            kept = [r for r in runs if Path(r.get("run_dir", "")).is_dir()]
            for r in kept:
                if "confused_pairs" not in r:
                    r.update(test_results(Path(r["run_dir"])))
                # the validation images, which the best-* recipes never look at (they keep the last epoch): a
                # second held-out check on the choices their search made by test accuracy
                if "val_accuracy" not in r and validation_images(r["run_dir"]):
                    r["val_accuracy"] = evaluate_runs([r["run_dir"]], "val")
            if key.split("/")[1].startswith("best"):
                for r in kept:
                    if "tta_accuracy" not in r:
                        r["tta_accuracy"] = evaluate_runs([r["run_dir"]], tta=True)
                seeds = sorted(r["seed"] for r in runs)
                if len(kept) == len(runs) > 1 and ensembles.get(key, {}).get("seeds") != seeds:
                    ensembles[key] = {"seeds": seeds, "accuracy": evaluate_runs([r["run_dir"] for r in kept])}
    path = save()
    rows = []
    for comp, c in json.loads(path.read_text())["comparisons"].items():
        for label, r in c["recipes"].items():
            acc, seeds = r["accuracy"], len(r["seeds"])
            rows.append({"data (local)": comp, "recipe": label, "model": r["architecture"],
                         "parameters": f"{r['parameters']:,}", "seeds": seeds,
                         "test accuracy": f"{acc['mean']:.4f}" + (f" ± {acc['std']:.4f}" if seeds > 1 else ""),
                         "macro F1": f"{r['f1_macro']['mean']:.4f}",
                         "with TTA": f"{r['tta_accuracy']['mean']:.4f}" if "tta_accuracy" in r else "–",
                         "ensemble of the seeds": f"{r['ensemble']['accuracy']:.4f}" if "ensemble" in r else "–",
                         "training min (fastest seed)": f"{r['train_minutes_fastest']:.1f}"})
    print(table(rows, list(rows[0]), markdown=True) if rows else "no runs")  # the README's table, as it is
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
