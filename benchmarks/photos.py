"""Photos of handwriting: accuracy of `predict` on characters photographed on paper, per condition, beside the same
characters as clean black-on-white images; before (the paper's conversion alone) and after the ink extraction.

Each character is a test-part image of a LOCAL corpus (localbymerge by default: real people's handwriting the
shipped model never trained on), put on paper by emnist_cnn.data.paper.photograph under one condition (lighting
gradient, shadow edge, ruled or squared paper, blue or pencil ink, noise, blur, rotation up to 10°, perspective
tilt, JPEG quality 50-90, thin or thick ink) or all of the common ones combined. "before" forces every image
through the clean path (what every image took until ink extraction existed); "after" is what `predict` does now.

    python benchmarks/photos.py                       # 500 characters per condition -> results/photos.json
    python benchmarks/photos.py --n 200 --model emnist-cnn/bymerge47
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import setup_data_dir, table, write_results  # noqa: E402

from emnist_cnn.data import ink, load_split, paper, preprocess  # noqa: E402
from emnist_cnn.models.pretrained import DEFAULT as DEFAULT_MODEL  # noqa: E402
from emnist_cnn.recognition import Recognizer  # noqa: E402


def accuracy(recognizer: Recognizer, files: list[bytes], labels: np.ndarray, classes: list[str]) -> float:
    forms = []
    for f in files:
        try:
            forms.append(preprocess.to_emnist(f))
        except preprocess.ImageError:
            forms.append(np.zeros((28, 28), np.uint8))  # "no ink found" counts as wrong
    top = recognizer.classify(np.stack(forms), 1)
    return float(np.mean([t[0][0] == classes[y] for t, y in zip(top, labels)]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--split", default="localbymerge")
    p.add_argument("--n", type=int, default=500, help="characters per condition")
    args = p.parse_args()
    setup_data_dir()
    recognizer = Recognizer.load(args.model)
    data = load_split(args.split, download=False, parts=("test",))
    if data.classes != recognizer.classes:
        raise SystemExit(f"{args.model} was not trained on the classes of {args.split}")
    pick = np.random.default_rng(0).choice(len(data.test_labels), args.n, replace=False)
    images, labels = data.test_images[pick], data.test_labels[pick]
    conditions = [("clean", ())] + [(c, (c,)) for c in paper.CONDITIONS] + [("combined", paper.COMBINED)]
    rows, results = [], []
    for name, chosen in conditions:
        rng = np.random.default_rng(1)
        files = [paper.photograph(im, chosen, rng) for im in images]
        real_is_clean = ink.is_clean
        ink.is_clean = lambda gray: True  # before: every image through the paper's conversion alone
        try:
            before = accuracy(recognizer, files, labels, data.classes)
        finally:
            ink.is_clean = real_is_clean
        start = time.perf_counter()
        after = accuracy(recognizer, files, labels, data.classes)
        ms = (time.perf_counter() - start) / len(files) * 1000
        results.append({"condition": name, "conditions": list(chosen), "n": args.n, "before": before,
                        "after": after, "ms_per_image": ms})
    clean = results[0]["after"]
    for r in results:
        r["after_minus_clean_points"] = 100 * (r["after"] - clean)
        target = 5.0 if r["condition"] == "combined" else 2.0
        r["target_met"] = r["condition"] == "clean" or r["after_minus_clean_points"] >= -target
        rows.append({"condition": r["condition"], "before": f"{r['before']:.3f}", "after": f"{r['after']:.3f}",
                     "after - clean": f"{r['after_minus_clean_points']:+.1f}", "target": "" if r["condition"] ==
                     "clean" else ("met" if r["target_met"] else "missed"), "ms/image": f"{r['ms_per_image']:.2f}"})
    path = write_results("photos", {"model": args.model, "data": f"{args.split} test part (LOCAL corpus)",
                                    "targets": "each condition within 2 points of clean, combined within 5",
                                    "results": results})
    print(table(rows, list(rows[0]), markdown=True))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
