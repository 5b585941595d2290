"""Inference speed: one image end to end (PNG file -> preprocessing -> model -> top-5) and batch throughput.

    python benchmarks/inference.py
    python benchmarks/inference.py --models cnn3 fast-cnn-s --threads 1 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import percentiles, table, times_ms, write_results  # noqa: E402

from emnist_cnn.evaluation import predict_logits  # noqa: E402
from emnist_cnn.models import create_model, save_model  # noqa: E402
from emnist_cnn.recognition import Recognizer  # noqa: E402


def handwritten_png(path: Path, rng: np.random.Generator) -> Path:
    """A 280×280 black-on-white PNG with a thick random stroke, like a canvas drawing or a phone crop."""
    img = np.full((280, 280), 255, np.uint8)
    yy, xx = np.mgrid[0:280, 0:280]
    angle, off = rng.uniform(0, np.pi), rng.uniform(-40, 40)
    d = np.abs((xx - 140) * np.sin(angle) - (yy - 140) * np.cos(angle) - off)
    img[(d < 10) & (np.hypot(xx - 140, yy - 140) < 100)] = 20
    Image.fromarray(img).save(path)
    return path


def measure(name: str, threads: int, pngs: list[Path], repeats: int) -> dict:
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = create_model(name, 47)
        save_model(Path(tmp), model, {"architecture": name, "model_args": {}, "classes": [chr(65 + i % 26) for i in
                                                                                             range(47)],
                                      "normalize": {"mean": 0.17, "std": 0.33}})
        recognizer = Recognizer.load(tmp)
        latencies = times_ms(lambda i: recognizer.predict(pngs[i % len(pngs)], top_k=5), repeats, warmup=20)
        model = recognizer.backend.model
        images = torch.randint(0, 256, (20_000, 28, 28), dtype=torch.uint8)
        predict_logits(model, images[:2048], 0.17, 0.33, torch.device("cpu"), channels_last=True)
        t = time.perf_counter()
        predict_logits(model, images, 0.17, 0.33, torch.device("cpu"), batch_size=256, channels_last=True)
        throughput = len(images) / (time.perf_counter() - t)
    p = percentiles(latencies)
    return {"model": name, "threads": threads, "single_image_ms": {"p50": p["p50_ms"], "p99": p["p99_ms"],
                                                                   "mean": statistics.fmean(latencies)},
            "batch_images_per_second": throughput, "repeats": repeats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["cnn3", "fast-cnn-s", "fast-cnn"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=1000)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        pngs = [handwritten_png(Path(tmp) / f"{i}.png", rng) for i in range(50)]
        results = [measure(m, t, pngs, args.repeats) for m in args.models for t in args.threads]
    path = write_results("inference", {"input": "280x280 PNG file, preprocess.to_emnist + model + top-5",
                                       "results": results}, per_machine=True)
    rows = [{"model": r["model"], "threads": r["threads"], "p50 ms": f"{r['single_image_ms']['p50']:.2f}",
             "p99 ms": f"{r['single_image_ms']['p99']:.2f}",
             "batch img/s": f"{r['batch_images_per_second']:.0f}"} for r in results]
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
