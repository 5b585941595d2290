"""Fixtures: small synthetic EMNIST splits written in EMNIST's own IDX layout (transposed, gzipped)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

REAL_DIRS = [Path(p) for p in os.environ.get("EMNIST_DATA_DIR", "").split(os.pathsep) if p]


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


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own cache dir and no implicit real data dir (real-data tests set it themselves)."""
    monkeypatch.setenv("EMNIST_CNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("EMNIST_CNN_URL", "http://127.0.0.1:9/nothing-here.zip")  # never the real network


@pytest.fixture
def synth_dir(tmp_path) -> Path:
    return make_split(tmp_path / "data")


@pytest.fixture
def real_data_dir(monkeypatch) -> str:
    """The real EMNIST directories; missing data fails under CI (never a silent skip), skips elsewhere."""
    spec = os.pathsep.join(str(d) for d in REAL_DIRS)
    if not REAL_DIRS or not all(d.is_dir() for d in REAL_DIRS):
        msg = f"EMNIST_DATA_DIR={spec!r} does not name existing directories"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    monkeypatch.setenv("EMNIST_DATA_DIR", spec)
    return spec
