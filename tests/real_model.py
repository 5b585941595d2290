"""A real digit recogniser for tests: cnn3 trained for one epoch on 16,000 real EMNIST digits (localdigits).

Trained once per test session (lru_cache) into a temporary directory, removed at exit; the data subset is written
in EMNIST's IDX layout beside it, never into the repository. EMNIST_CNN_TEST_DIGITS_MODEL=RUN_DIR reuses a model
instead (handy while developing the web tests).
"""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

from helpers import write_idx

N_TRAIN, N_TEST = 16_000, 2_000


@functools.lru_cache(maxsize=None)
def digits_model_dir(data_dir: str) -> Path:
    from emnist_cnn import train
    from emnist_cnn.config import Config
    from emnist_cnn.data import load_split
    if os.environ.get("EMNIST_CNN_TEST_DIGITS_MODEL"):
        return Path(os.environ["EMNIST_CNN_TEST_DIGITS_MODEL"])
    root = Path(tempfile.mkdtemp(prefix="emnist-cnn-realdigits-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    split = load_split("localdigits", data_dir, download=False)
    for part, images, labels, n in (("train", split.train_images, split.train_labels, N_TRAIN),
                                    ("test", split.test_images, split.test_labels, N_TEST)):
        write_idx(root / f"emnist-realdigits-{part}-images-idx3-ubyte.gz", images[:n].transpose(0, 2, 1))
        write_idx(root / f"emnist-realdigits-{part}-labels-idx1-ubyte.gz", labels[:n])
    (root / "emnist-realdigits-mapping.txt").write_text("".join(f"{k} {ord('0') + k}\n" for k in range(10)))
    cfg = Config(split="realdigits", data_dir=str(root), architecture="cnn3", epochs=1, batch_size=64, lr=2e-3,
                 scheduler="none", val_fraction=0.05, rotate=8.0, out_dir=str(root / "runs"), preset="test",
                 device="cpu", precision="fp32")
    return train(cfg, progress=False, log=lambda *a: None)


def ellipse(cx=0.5, cy=0.5, rx=0.4, ry=0.5, start=0.0, stop=1.0, n=24):
    import math
    return [(cx + rx * math.sin(2 * math.pi * t), cy - ry * math.cos(2 * math.pi * t))
            for t in (start + (stop - start) * i / n for i in range(n + 1))]


# Digits as pen strokes in unit coordinates (x right, y down), the way people write them.
DIGITS = {
    "0": [ellipse(rx=0.35)],
    "1": [[(0.45, 0.0), (0.5, 1.0)]],
    "2": [ellipse(cy=0.3, rx=0.35, ry=0.3, start=-0.25, stop=0.3, n=10) + [(0.1, 1.0), (0.9, 1.0)]],
    "3": [ellipse(cy=0.27, rx=0.33, ry=0.25, start=-0.2, stop=0.5, n=10),
          ellipse(cy=0.74, rx=0.38, ry=0.26, start=0.0, stop=0.7, n=10)],
    "4": [[(0.65, 0.0), (0.05, 0.65), (0.95, 0.65)], [(0.7, 0.35), (0.7, 1.0)]],
    "7": [[(0.1, 0.0), (0.9, 0.0), (0.35, 1.0)]],
}
