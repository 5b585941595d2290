"""Training and evaluation speed: the notebook's pipeline (baseline_pipeline.py) vs emnist-cnn, side by side.

Same model (cnn3, the reference36 recipe), same data (localbalanced classes 0-35, pooled 70/20/10), same number of
training images. Each measurement runs in its own subprocess, one after the other, so peak memory is its own.

Beside the ratio to the baseline, every row says how close it runs to this machine's own limit: the roof is the
GFLOP/s of the best large dense kernel in that precision at the same thread count (measured here, each run; see
roof()), and a row's share is (model FLOPs per image, forward + backward as torch.utils.flop_counter counts them)
x images/s / roof.

    python benchmarks/speed.py                 # one epoch of the 22,680 training images per measurement
    python benchmarks/speed.py --images 6400   # quicker
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import setup_data_dir, table, write_results  # noqa: E402

DATASET = dict(split="localbalanced", classes="0-35", resplit="0.7,0.2,0.1")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(spec: dict) -> dict:
    """One measurement, in this (fresh) process."""
    import torch

    from emnist_cnn.config import get_preset
    from emnist_cnn.models import create_model
    torch.manual_seed(0)
    start = time.perf_counter()
    if spec["pipeline"] == "baseline":
        from baseline_pipeline import evaluate_images, train_images
        model = create_model("cnn3", 36)
        tr = train_images(model, Path(spec["folder"]) / "train", spec["images"], spec["batch"])
        evaluate_images(model, Path(spec["folder"]) / "test")  # warm-up, as for emnist-cnn below
        ev = evaluate_images(model, Path(spec["folder"]) / "test")
        return {**spec, "precision": "fp32", "train_images_per_second": tr["images_per_second"],
                "eval_images_per_second": ev["images_per_second"], "setup_seconds": 0.0,
                "peak_rss_mb": peak_rss_mb()}

    from emnist_cnn.data import build_dataset
    from emnist_cnn.evaluation import evaluate
    from emnist_cnn.runtime import resolve_precision
    from emnist_cnn.training.loop import train_one_epoch
    from emnist_cnn.training.optim import make_optimizer
    device = torch.device("cpu")
    precision = resolve_precision(spec["precision"], device)
    data = build_dataset(**DATASET)
    setup = time.perf_counter() - start
    cfg = get_preset("reference36").replace(batch_size=spec["batch"], epochs=1)
    model = create_model("cnn3", 36).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    images, labels = data.train[0][:spec["images"]], data.train[1][:spec["images"]]
    step_model = model
    if spec.get("compile"):  # torch.compile (inductor); its compilation is left out of the timing
        step_model = torch.compile(model)
        warm = spec["batch"] * 20
        train_one_epoch(cfg, step_model, optimizer, scheduler, images[:warm], labels[:warm], 0, precision,
                        progress=False)
    tr = train_one_epoch(cfg, step_model, optimizer, scheduler, images, labels, 0, precision, progress=False)
    def run_eval():
        evaluate(model, *data.test, data.classes, mean=0.5, std=0.5, precision=precision, channels_last=True,
                 batch_size=cfg.eval_batch_size, with_details=False)
    run_eval()  # warm-up: oneDNN prepares its kernels for each new batch shape
    t = time.perf_counter()
    run_eval()
    eval_ips = len(data.test[1]) / (time.perf_counter() - t)
    return {**spec, "precision": precision, "train_images_per_second": tr["images_per_second"],
            "eval_images_per_second": eval_ips, "setup_seconds": setup, "peak_rss_mb": peak_rss_mb()}


def roof(precision: str, seconds: float = 1.5) -> dict:
    """GFLOP/s of large dense kernels in this precision at torch's current thread count: the machine's own limit.
    Two libraries do the work here: MKL the matmul, oneDNN the convolutions (on AMD CPUs MKL's matmul reaches
    well under half of what oneDNN's convolutions do), so the roof is the best of a 2048x2048 matmul, a 1x1
    convolution that is a 4096x1024x1024 GEMM, and a 3x3 convolution 128->256 channels at 14x14, batch 64."""
    import torch
    import torch.nn.functional as F
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    cl = torch.channels_last
    a, b = torch.randn(2048, 2048).to(dtype), torch.randn(2048, 2048).to(dtype)
    x1, w1 = torch.randn(1, 1024, 64, 64).to(dtype, memory_format=cl), torch.randn(1024, 1024, 1, 1).to(dtype)
    x3, w3 = torch.randn(64, 128, 14, 14).to(dtype, memory_format=cl), torch.randn(256, 128, 3, 3).to(dtype)
    kernels = {"matmul 2048": (lambda: a @ b, 2 * 2048 ** 3),
               "conv1x1 1024ch 64x64": (lambda: F.conv2d(x1, w1), 2 * 1024 * 1024 * 64 * 64),
               "conv3x3 128->256 14x14 b64": (lambda: F.conv2d(x3, w3, padding=1), 2 * 64 * 256 * 128 * 9 * 14 * 14)}
    out = {}
    with torch.inference_mode():
        for name, (run, flops) in kernels.items():
            for _ in range(3):
                run()  # warm-up: the libraries pick and prepare their kernels
            best, end = float("inf"), time.perf_counter() + seconds
            while time.perf_counter() < end:
                t = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - t)
            out[name] = flops / best / 1e9
    return {"kernels": out, "gflops": max(out.values())}


def model_flops(num_classes: int = 36) -> dict:
    """cnn3's FLOPs per image: forward (evaluation) and forward + backward (training)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from emnist_cnn.models import create_model
    model, x = create_model("cnn3", num_classes), torch.randn(64, 1, 28, 28)
    with FlopCounterMode(display=False) as forward:
        model(x)
    with FlopCounterMode(display=False) as both:
        model(x).sum().backward()
    return {"forward": forward.get_total_flops() / 64, "train": both.get_total_flops() / 64}


def median_row(runs: list[dict]) -> dict:
    """One row from repeated measurements: the median of each speed, every value kept."""
    row = dict(runs[0])
    for key in ("train_images_per_second", "eval_images_per_second"):
        row[key] = statistics.median(r[key] for r in runs)
        row[key.replace("_per_second", "_per_second_runs")] = [r[key] for r in runs]
    row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return row


def run_worker(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"worker {spec} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=22_680, help="training images per measurement")
    p.add_argument("--batches", default="64,256,1024", help="emnist-cnn batch sizes to measure")
    p.add_argument("--repeats", type=int, default=3, help="measurements per row, interleaved; the median is shown")
    p.add_argument("--compile", action="store_true", help="also each emnist-cnn row with torch.compile")
    p.add_argument("--name", default="speed", help="results file: benchmarks/results/NAME-CPUKIND.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    setup_data_dir()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    import torch
    from baseline_pipeline import write_png_folder

    from emnist_cnn.data import build_dataset
    from emnist_cnn.runtime import has_fast_bf16
    data = build_dataset(**DATASET)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_png_folder(data.train[0].numpy(), data.train[1].numpy(), data.classes, folder / "train")
        write_png_folder(data.test[0].numpy(), data.test[1].numpy(), data.classes, folder / "test")
        specs = [{"pipeline": "baseline", "batch": 64, "images": args.images, "folder": str(folder)}]
        precisions = ["fp32"] + (["bf16"] if has_fast_bf16(torch.device("cpu")) else [])
        specs += [{"pipeline": "emnist-cnn" + (" compiled" if compiled else ""), "batch": int(b),
                   "images": args.images, "precision": prec, "compile": compiled}
                  for prec in precisions for b in args.batches.split(",") for compiled in
                  ([False, True] if args.compile else [False])]
        # rows interleaved round by round, so that a slow spell of the (shared, virtual) machine hits every row
        rounds = [[run_worker(s) for s in specs] for _ in range(args.repeats)]
        results = [median_row([r[i] for r in rounds]) for i in range(len(specs))]
    roofs = {prec: roof(prec) for prec in precisions}  # after the workers: the same idle machine
    roof_gflops = {prec: r["gflops"] for prec, r in roofs.items()}
    flops = model_flops()
    base = results[0]
    for r in results:
        r.pop("folder", None)
        r["train_speedup"] = r["train_images_per_second"] / base["train_images_per_second"]
        r["eval_speedup"] = r["eval_images_per_second"] / base["eval_images_per_second"]
        r["train_roof_share"] = flops["train"] * r["train_images_per_second"] / 1e9 / roof_gflops[r["precision"]]
        r["eval_roof_share"] = flops["forward"] * r["eval_images_per_second"] / 1e9 / roof_gflops[r["precision"]]
    path = write_results(args.name, {
        "dataset": DATASET, "model": "cnn3", "flops_per_image": flops, "threads": torch.get_num_threads(),
        "roof_gflops": roof_gflops, "roof_kernels": {p: r["kernels"] for p, r in roofs.items()}, "results": results,
        "note": "bf16 measured only where the CPU has fast bf16 (AVX512-BF16/AMX); roof: the best large kernel"},
        per_machine=True)
    rows = [{"pipeline": r["pipeline"], "batch": r["batch"], "precision": r["precision"],
             "train img/s": f"{r['train_images_per_second']:.0f}", "train x": f"{r['train_speedup']:.1f}",
             "train % roof": f"{100 * r['train_roof_share']:.0f}%",
             "eval img/s": f"{r['eval_images_per_second']:.0f}", "eval x": f"{r['eval_speedup']:.1f}",
             "eval % roof": f"{100 * r['eval_roof_share']:.0f}%",
             "peak RSS MB": f"{r['peak_rss_mb']:.0f}"} for r in results]
    print(f"roof ({torch.get_num_threads()} threads, the best large kernel): "
          + "; ".join(f"{p} {r['gflops']:.0f} GFLOP/s (" + ", ".join(f"{k} {v:.0f}" for k, v in r["kernels"].items())
                      + ")" for p, r in roofs.items())
          + f"; cnn3 {flops['forward'] / 1e6:.1f} MFLOP forward, {flops['train'] / 1e6:.1f} MFLOP per training image")
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
