"""Accuracy of `predict` on image files versus evaluating the same test images directly: the gap is what the
preprocessing (any image -> EMNIST form) costs.

It also counts the images whose answer changed, and how far the preprocessed 28×28 image is from the original
(mean absolute difference, of 255). Each test image is written as a PNG the way a user would supply it: black ink on white paper, rescaled (1-4×,
bicubic) and placed off-centre on a larger canvas. `predict` must undo all of that.

    python benchmarks/predict.py --model RUN_DIR --split localbymerge --n 2000
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import setup_data_dir, table, write_results  # noqa: E402

from emnist_cnn.data import (
    load_split,  # noqa: E402
    preprocess,  # noqa: E402
)
from emnist_cnn.models.pretrained import DEFAULT as DEFAULT_MODEL  # noqa: E402
from emnist_cnn.recognition import Recognizer  # noqa: E402


def write_scans(images: np.ndarray, folder: Path, rng: np.random.Generator) -> list[Path]:
    paths = []
    for i, im in enumerate(images):
        scale = int(rng.integers(1, 5))
        ink = Image.fromarray(255 - im).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
        paper = Image.new("L", (28 * scale + int(rng.integers(10, 200)), 28 * scale + int(rng.integers(10, 120))), 255)
        paper.paste(ink, (int(rng.integers(0, paper.width - ink.width + 1)),
                          int(rng.integers(0, paper.height - ink.height + 1))))
        paths.append(folder / f"{i:05d}.png")
        paper.save(paths[-1])
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--split", default="localbymerge")
    p.add_argument("--n", type=int, default=2000, help="test images (a random sample)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data_dir = setup_data_dir()
    recognizer = Recognizer.load(args.model)
    test = load_split(args.split, data_dir, download=False, parts=("test",))
    if test.classes != recognizer.classes:
        raise SystemExit(f"{args.split}'s classes differ from the model's")
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(test.test_labels), size=min(args.n, len(test.test_labels)), replace=False)
    images, labels = test.test_images[idx], test.test_labels[idx]
    truth = [test.classes[y] for y in labels]
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_scans(images, Path(tmp), rng)
        start = time.perf_counter()
        tops = [recognizer.predict(path, 1) for path in paths]  # one at a time, as the CLI and server do
        seconds = time.perf_counter() - start
        forms = np.stack([preprocess.to_emnist(path) for path in paths])  # what predict fed the model
    direct_tops = recognizer.classify(images, 1)
    direct = np.mean([top[0][0] == t for top, t in zip(direct_tops, truth)])
    via_files = np.mean([top[0][0] == t for top, t in zip(tops, truth)])
    row = {"split": args.split, "images": len(idx), "direct_accuracy": round(float(direct), 4),
           "predict_accuracy": round(float(via_files), 4), "gap_points": round(100 * float(direct - via_files), 2),
           "answers_changed": sum(a[0][0] != b[0][0] for a, b in zip(direct_tops, tops)),
           "mean_abs_pixel_diff": round(float(np.abs(forms.astype(np.int16) - images).mean()), 2),
           "ms_per_image": round(1000 * seconds / len(idx), 2)}
    print(table([row], list(row)))
    print(f"wrote {write_results('predict', {'model': str(args.model), 'target_gap_points': 0.5, 'results': [row]})}")


if __name__ == "__main__":
    main()
