"""Train, evaluate and package the pretrained recognisers shipped in src/emnist_cnn/models/pretrained/.

    python scripts/build_pretrained.py                      # all: train, evaluate, package
    python scripts/build_pretrained.py digits               # one
    python scripts/build_pretrained.py digits --from RUN    # package a finished run of the same recipe
                                                            # (e.g. one kept by benchmarks/accuracy.py --keep)

Each model comes from the `emnist-cnn train` command recorded here (and in its model.json), is evaluated by
evaluate_models (what `emnist-cnn evaluate` computes) on its test part, and only model.safetensors + model.json are
copied into the package.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "src" / "emnist_cnn" / "models" / "pretrained"

RECIPES = {
    # bymerge47: the default recogniser (digits, uppercase, the 11 lowercase letters EMNIST keeps apart)
    "bymerge47": "--preset best-bymerge --split localbymerge",
    "digits": "--preset best-digits --split localdigits",
    # lines47: the default line model of `read` (crnn-wide + CTC on lines composed from localbymerge's characters)
    "lines47": "--preset read-lines",
    # lines10: the line model `read` takes for charset digits (lines47 fine-tuned on lines of its train digits)
    "lines10": "--preset read-digit-lines",
}
SEED = 0
BOOKKEEPING = {"out_dir", "report", "tensorboard", "device", "data_dir"}  # may differ without changing the model


def recipe_config(name: str) -> dict:
    """The config a user's `emnist-cnn train RECIPES[NAME] --seed SEED` gets."""
    from emnist_cnn.cli import build_parser, config_from_args
    return config_from_args(build_parser().parse_args(["train", *shlex.split(RECIPES[name]),
                                                       "--seed", str(SEED)])).to_dict()


def check_same_recipe(name: str, run_dir: Path) -> None:
    """A run packaged as NAME must have been trained with exactly RECIPES[NAME] and SEED."""
    want = recipe_config(name)
    got = json.loads((run_dir / "config.json").read_text())
    diff = {k: (got.get(k), v) for k, v in want.items() if k not in BOOKKEEPING and got.get(k) != v}
    if diff:
        raise SystemExit(f"{run_dir} was not trained with the {name} recipe ({RECIPES[name]} --seed {SEED}); "
                         f"differs in: " + ", ".join(f"{k}={g!r} (recipe: {w!r})" for k, (g, w) in diff.items()))


def emnist_cnn(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "emnist_cnn", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"emnist-cnn {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def build(name: str, from_run: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if from_run:
            run_dir = Path(from_run)
            check_same_recipe(name, run_dir)
        else:
            train_args = ["train", *shlex.split(RECIPES[name]), "--seed", str(SEED), "--out-dir", tmp, "--quiet",
                          "--no-report"]
            run_dir = Path(emnist_cnn(*train_args).strip().splitlines()[-1].split(": ", 1)[1])
        from emnist_cnn.evaluation import evaluate_models, summary
        from emnist_cnn.files import write_json
        meta = json.loads((run_dir / "model.json").read_text())
        if meta.get("reads") == "line":  # its test lines were read when it finished training (training/lines.py)
            metrics = json.loads((run_dir / "metrics.json").read_text())
            score = f"test CER {metrics['mixed']['cer']:.4f} on {metrics['mixed']['lines']} lines"
            meta.update(test_cer=metrics["mixed"]["cer"])
        else:
            metrics = summary(evaluate_models([run_dir], "test", device="cpu"))
            score = f"test accuracy {metrics['accuracy']:.4f} on {metrics['n']} images"
            meta.update(test_accuracy=metrics["accuracy"])
        rows = (run_dir / "metrics.jsonl").read_text().splitlines()
        # where the run wrote its files is the packaging machine's business, not the model's
        meta["config"] = {**meta["config"], **{k: v for k, v in recipe_config(name).items() if k in BOOKKEEPING}}
        meta.update(name=f"emnist-cnn/{name}", test_metrics=metrics,
                    command=f"emnist-cnn train {RECIPES[name]} --seed {SEED}",
                    training_seconds=json.loads(rows[-1])["elapsed_seconds"],  # the run's own clock
                    trained_on=json.loads((run_dir / "config.json").read_text())["_environment"])
        target = PRETRAINED / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "model.safetensors", target / "model.safetensors")
        write_json(target / "model.json", meta)
    print(f"emnist-cnn/{name}: {score} -> {target}")


if __name__ == "__main__":
    os.environ.setdefault("EMNIST_DATA_DIR", str(ROOT.parent / "shared/data/emnist") + os.pathsep +
                          str(ROOT.parent / "shared/data/emnist-local"))
    import argparse
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", choices=list(RECIPES), default=list(RECIPES))
    p.add_argument("--from", dest="from_run", metavar="RUN_DIR", help="package this finished run (one name only)")
    args = p.parse_args()
    if args.from_run and len(args.names) != 1:
        p.error("--from packages one run: name exactly one model")
    for name in args.names:
        build(name, args.from_run)
