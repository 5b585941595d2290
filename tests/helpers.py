"""What several test modules share: synthetic EMNIST files, small configs, drawn characters, small models."""
from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import socket
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from emnist_cnn.config import Config
from emnist_cnn.models import create_model, save_model


# ----------------------------------------------------------------------------------------------- EMNIST files
def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> Path:
    data = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name if path.name.endswith(".gz") else path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path = path.with_name(path.name[:-3] if path.name.endswith(".gz") else path.name)
        path.write_bytes(data)
    return path


def class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Upright 28×28 images whose class is learnable: class c draws a bar at an angle/position of its own."""
    n = len(labels)
    imgs = np.zeros((n, 28, 28), dtype=np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for i, c in enumerate(labels):
        angle = np.pi * (c % 6) / 6 + rng.normal(0, 0.05)
        off = (c // 6) * 5 - 5 + rng.normal(0, 0.7)
        d = np.abs((xx - 14) * np.sin(angle) - (yy - 14) * np.cos(angle) - off)
        imgs[i] = np.clip(2.5 - d, 0, 1) * 255
    imgs += rng.normal(0, 8, imgs.shape)
    return np.clip(imgs, 0, 255).astype(np.uint8)


def make_split(root: Path, name: str = "synth", num_classes: int = 6, n_train: int = 240, n_test: int = 60,
               gz: bool = True, label_offset: int = 0, seed: int = 0) -> Path:
    """Write emnist-NAME-{train,test}-{images,labels} + mapping (classes 'a','b',...) into root."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        images = class_images(labels, rng).transpose(0, 2, 1)  # stored transposed, as EMNIST does
        write_idx(root / f"emnist-{name}-{part}-images-idx3-ubyte.gz", images, gz)
        write_idx(root / f"emnist-{name}-{part}-labels-idx1-ubyte.gz", labels + label_offset, gz)
    (root / f"emnist-{name}-mapping.txt").write_text(
        "".join(f"{k + label_offset} {ord('a') + k}\r\n" for k in range(num_classes)))
    return root



# ----------------------------------------------------------------------------------------------- training
def small_config(synth_dir, tmp_path, **kw):
    base = dict(split="synth", data_dir=str(synth_dir), architecture="cnn3", epochs=3, batch_size=32, lr=2e-3,
                scheduler="step", step_size=2, rotate=10.0, val_fraction=0.25, out_dir=str(tmp_path / "runs"),
                eval_batch_size=64, preset="test", report=False,
                device="cpu", precision="fp32")  # what the tests compare must not depend on the CPU
    return Config(**{**base, **kw})


def without_timings(rows):
    return [{k: v for k, v in r.items() if "second" not in k} for r in rows]


def read_rows(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------------------------- images, models
SEVEN = [[(0.1, 0.05), (0.9, 0.05), (0.35, 1.0)]]


def draw(strokes, size=100, canvas=(280, 280), at=(90, 90), ink=0, paper=255, mode="L"):
    """Render strokes scaled to size pixels with a pen of size/10, top-left corner at `at`."""
    img = Image.new(mode, canvas, paper)
    d = ImageDraw.Draw(img)
    width = max(2, round(size / 10))
    for s in strokes:
        pts = [(at[0] + x * size, at[1] + y * size) for x, y in s]
        d.line(pts, fill=ink, width=width, joint="curve")
        for p in pts:  # round caps
            d.ellipse([p[0] - width / 2, p[1] - width / 2, p[0] + width / 2, p[1] + width / 2], fill=ink)
    return img


def png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def random_model_dir(path, classes="abcdef"):
    """A real (untrained) tiny-cnn saved as a model directory: fast, and exercises the loading path."""
    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    save_model(path, create_model("tiny-cnn", num_classes=len(classes)),
               {"architecture": "tiny-cnn", "classes": list(classes), "normalize": {"mean": 0.5, "std": 0.5}})
    return path


def random_line_model_dir(path, classes="abcdef ", architecture="crnn"):
    """A real (untrained) line model saved as a line model directory: what a Recognizer needs to read lines."""
    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    save_model(path, create_model(architecture, num_classes=len(classes)),
               {"architecture": architecture, "classes": list(classes), "normalize": {"mean": 0.1, "std": 0.25},
                "reads": "line", "height": 32})
    return path


def line_image(glyphs, gap=40, size=100, extra=None):
    """Glyphs (stroke lists) side by side on white paper, `gap` pixels apart; extra(draw, x) adds marks."""
    img = Image.new("L", (len(glyphs) * (size + gap) + 60, size + 80), 255)
    x = 30
    for g in glyphs:
        left, right = min(p[0] for s in g for p in s), max(p[0] for s in g for p in s)
        ink = draw(g, size=size, canvas=(size + 40, size + 40), at=(20 - left * size, 20))
        img.paste(ink, (x - 20, 20), mask=Image.eval(ink, lambda v: 255 - v))  # glyph ink only
        x += round((right - left) * size) + size // 10 + gap  # the next glyph starts `gap` after this one's ink
    return img



@contextlib.contextmanager
def serving(app, **options):
    """The app under uvicorn in a thread on a free 127.0.0.1 port; yields the port."""
    import uvicorn
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# Capitals as pen strokes in unit coordinates (x right, y down), with real_model.DIGITS: words to write.
LETTERS = {
    "E": [[(0.8, 0.0), (0.2, 0.0), (0.2, 1.0), (0.8, 1.0)], [(0.2, 0.5), (0.7, 0.5)]],
    "H": [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.85, 1.0)], [(0.15, 0.5), (0.85, 0.5)]],
    "L": [[(0.2, 0.0), (0.2, 1.0), (0.8, 1.0)]],
    "N": [[(0.15, 1.0), (0.15, 0.0), (0.85, 1.0), (0.85, 0.0)]],
    "O": [[(0.5 + 0.4 * math.sin(2 * math.pi * i / 24), 0.5 - 0.5 * math.cos(2 * math.pi * i / 24))
           for i in range(25)]],
    "T": [[(0.05, 0.0), (0.95, 0.0)], [(0.5, 0.0), (0.5, 1.0)]],
}
