"""PyTorch vs onnxruntime fp32 vs onnxruntime int8 on one trained model: latency, throughput, accuracy.

    python benchmarks/export.py RUN_OR_MODEL [--split SPLIT] [--threads N] [--batch 256]

The model is exported afresh (fp32 and static int8) into a temporary directory. Accuracy is measured on the
whole test part of the run's own dataset (or --split); every backend gets the same threads.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import setup_data_dir, table, times_ms, write_results  # noqa: E402

from emnist_cnn.config import Config  # noqa: E402
from emnist_cnn.data import (
    build_dataset,  # noqa: E402
    to_input,  # noqa: E402
)
from emnist_cnn.models import load_model, resolve_model_dir  # noqa: E402
from emnist_cnn.recognition.onnx import OnnxBackend, export_onnx  # noqa: E402


def measure(name: str, logits, x: np.ndarray, labels: np.ndarray, batch: int, repeats: int) -> dict:
    predictions = np.concatenate([logits(x[i:i + 1024]).argmax(1) for i in range(0, len(x), 1024)])
    one = times_ms(lambda _: logits(x[:1]), repeats * 20)
    many = times_ms(lambda _: logits(x[:batch]), repeats)
    return {"backend": name, "accuracy": float((predictions == labels).mean()),
            "latency_ms_batch1": statistics.median(one),
            f"images_per_second_batch{batch}": batch / statistics.median(many) * 1e3}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="run directory, model directory or pretrained name")
    p.add_argument("--split", help="dataset for accuracy (default: the run's own)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch", type=int, default=256, help="batch size for throughput")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    setup_data_dir()
    torch.set_num_threads(args.threads)

    model, meta = load_model(args.model)
    config = resolve_model_dir(args.model) / "config.json"
    cfg = Config.from_json(config) if config.is_file() else Config(split=args.split or "balanced")
    cfg = cfg.replace(**({"split": args.split} if args.split else {}))
    data = build_dataset(cfg.split, cfg.data_dir or None, cfg.classes, cfg.resplit, cfg.val_fraction)
    images, labels = data.test if data.test is not None else data.val
    x = to_input(images, meta["normalize"]["mean"], meta["normalize"]["std"]).numpy()
    y = labels.numpy()

    def torch_logits(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    rows = [measure("pytorch fp32", torch_logits, x, y, args.batch, args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        for quantize in (None, "int8"):
            path = export_onnx(args.model, Path(tmp) / f"{quantize or 'fp32'}.onnx", quantize=quantize)
            backend = OnnxBackend(path, threads=args.threads)
            row = measure(f"onnxruntime {quantize or 'fp32'}", backend.logits, x, y, args.batch, args.repeats)
            rows.append({**row, "file_bytes": path.stat().st_size})
    base = rows[0]
    throughput = f"images_per_second_batch{args.batch}"
    for r in rows:
        r["accuracy_change"] = r["accuracy"] - base["accuracy"]
        r["speedup_batch1"] = base["latency_ms_batch1"] / r["latency_ms_batch1"]
        r[f"speedup_batch{args.batch}"] = r[throughput] / base[throughput]

    path = write_results("export", {"model": str(args.model), "architecture": meta["architecture"],
                                    "data": data.name, "test_images": len(y),
                                    "threads": args.threads, "results": rows})
    shown = [{**r, "accuracy": f"{r['accuracy']:.4f}", "accuracy_change": f"{r['accuracy_change']:+.4f}",
              "latency_ms_batch1": f"{r['latency_ms_batch1']:.3f}", throughput: f"{r[throughput]:.0f}",
              "speedup_batch1": f"{r['speedup_batch1']:.2f}x",
              f"speedup_batch{args.batch}": f"{r[f'speedup_batch{args.batch}']:.2f}x"} for r in rows]
    print(f"{meta['architecture']} on {data.name} test ({len(y)} images), {args.threads} threads")
    print(table(shown, ["backend", "accuracy", "accuracy_change", "latency_ms_batch1", "speedup_batch1",
                        throughput, f"speedup_batch{args.batch}", "file_bytes"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
