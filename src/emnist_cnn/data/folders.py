"""Image-folder datasets: one sub-folder per class, images of any size and mode, converted to EMNIST's form by the
same preprocess.to_emnist that recognition uses, so that training matches use."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError, ImageError
from .preprocess import IMAGE_SUFFIXES, to_emnist


# ----------------------------------------------------------------------------------------------- image folders
def is_image_folder(path: str | os.PathLike | None) -> bool:
    """A single directory with class sub-folders and no EMNIST mapping file: an image-folder dataset."""
    if not path or os.pathsep in str(path) or not Path(path).is_dir():
        return False
    entries = list(Path(path).iterdir())
    return not any(p.name.endswith("-mapping.txt") for p in entries) and any(p.is_dir() for p in entries)


def load_folder(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One sub-folder per class (its name is the class), images of any size and mode."""
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = [(c, sorted(f for f in c.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)) for c in class_dirs]
    files = [(c, fs) for c, fs in files if fs]
    if not files:
        raise DataError(f"{root}: no images found (expected one sub-folder per class holding "
                        f"{', '.join(sorted(IMAGE_SUFFIXES))} files)")
    if len(files) < 2:
        raise DataError(f"{root}: only one class ({files[0][0].name}); need at least two sub-folders with images")
    images, labels = [], []
    for label, (_, paths) in enumerate(files):
        for p in paths:
            try:  # the same conversion as at prediction time (preprocess.py), so training matches use
                images.append(to_emnist(p))
            except ImageError as e:
                raise DataError(f"{p}: unreadable image ({e})") from None
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), [c.name for c, _ in files]
