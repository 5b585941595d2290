"""Train, evaluate and package the pretrained recognisers shipped in src/emnist_cnn/pretrained/.

    python scripts/build_pretrained.py            # both
    python scripts/build_pretrained.py digits     # one

Each model comes from the `emnist-cnn train` command recorded here (and in its model.json), is evaluated by
`emnist-cnn evaluate` on its test split, and only model.safetensors + model.json are copied into the package.
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
PRETRAINED = ROOT / "src" / "emnist_cnn" / "pretrained"

RECIPES = {
    # digits: fast-cnn-s, light augmentation, one-cycle
    "digits": "--split localdigits --model fast-cnn-s --dropout 0 --epochs 5 --batch-size 256 --optimizer adamw "
              "--lr 0.01 --weight-decay 0.0005 --scheduler onecycle --label-smoothing 0.05 --rotate 8 --scale 0.08 "
              "--translate 0.06 --normalize-mean 0.17 --normalize-std 0.33 --val-fraction 0.05",
    # bymerge47: the default recogniser (digits, uppercase, the 11 lowercase letters EMNIST keeps apart)
    "bymerge47": "--split localbymerge --model fast-cnn-s --dropout 0.1 --epochs 10 --batch-size 256 "
                 "--optimizer adamw --lr 0.006 --weight-decay 0.0005 --scheduler onecycle --label-smoothing 0.1 "
                 "--rotate 10 --scale 0.1 --translate 0.08 --normalize-mean 0.17 --normalize-std 0.33 "
                 "--val-fraction 0.05",
}


def emnist_cnn(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "emnist_cnn", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"emnist-cnn {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def build(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        train_args = ["train", *shlex.split(RECIPES[name]), "--seed", "0", "--out-dir", tmp, "--quiet",
                      "--no-report"]
        run_dir = Path(emnist_cnn(*train_args).strip().splitlines()[-1].split(": ", 1)[1])
        metrics = json.loads(emnist_cnn("evaluate", str(run_dir), "--split", "test").split("wrote")[0])
        meta = json.loads((run_dir / "model.json").read_text())
        meta.update(name=f"emnist-cnn/{name}", test_accuracy=metrics["accuracy"], test_metrics=metrics,
                    command=f"emnist-cnn train {RECIPES[name]} --seed 0")
        target = PRETRAINED / name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "model.safetensors", target / "model.safetensors")
        tmp_json = target / "model.json.tmp"
        tmp_json.write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp_json, target / "model.json")
    print(f"emnist-cnn/{name}: test accuracy {metrics['accuracy']:.4f} on {metrics['n']} images -> {target}")


if __name__ == "__main__":
    os.environ.setdefault("EMNIST_DATA_DIR", str(ROOT.parent / "shared/data/emnist") + os.pathsep +
                          str(ROOT.parent / "shared/data/emnist-local"))
    for name in sys.argv[1:] or list(RECIPES):
        build(name)
