"""Datasets: an EMNIST split's official parts as tensors, plus class subsets, pooled re-splits and a validation
share; `dataset_for(cfg)` is the one way to build the dataset a configuration names."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..errors import DataError
from .files import (
    OFFICIAL_SPLITS,
    cache_dir,
    load_array,
    read_mapping,
    search_dirs,
    split_files,
)
from .folders import is_image_folder, load_folder

# Named datasets built from a split: (split, classes, resplit ratios).
ALIASES = {"balanced36": ("balanced", "0-35", "0.7,0.2,0.1")}

# ----------------------------------------------------------------------------------------------- splits
@dataclass
class Split:
    """One EMNIST split as stored: official train and test parts, labels 0..C-1, class characters."""
    name: str
    train_images: np.ndarray | None
    train_labels: np.ndarray | None
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    classes: list[str]


def load_split(split: str, data_dir: str | None = None, download: bool = True, parts=("train", "test")) -> Split:
    """Load a split's parts (a part not asked for is None); fetch official files if missing and allowed."""
    dirs = search_dirs(data_dir)
    try:
        files = split_files(split, dirs, parts)
    except DataError:
        if not (download and split in OFFICIAL_SPLITS):
            raise
        from .download import fetch_official
        fetch_official(cache_dir())
        files = split_files(split, dirs, parts)
    mapping = read_mapping(files["mapping"])
    offset = min(mapping)  # letters' labels start at 1; every other split at 0
    classes = [mapping[k] for k in sorted(mapping)]
    if sorted(mapping) != list(range(offset, offset + len(mapping))):
        raise DataError(f"{files['mapping']}: labels are not consecutive: {sorted(mapping)}")
    loaded = {"train": (None, None), "test": (None, None)}
    for part in parts:
        images = load_array(files[f"{part}_images"], "images")
        labels = load_array(files[f"{part}_labels"], "labels")
        if len(images) != len(labels):
            raise DataError(f"{files[f'{part}_images']}: {len(images)} images but "
                            f"{files[f'{part}_labels']} has {len(labels)} labels")
        bad = (labels < offset) | (labels >= offset + len(classes))
        if bad.any():
            raise DataError(f"{files[f'{part}_labels']}: label {int(labels[bad][0])} at index "
                            f"{int(np.flatnonzero(bad)[0])} is not covered by {files['mapping'].name} "
                            f"(labels {offset}..{offset + len(classes) - 1})")
        loaded[part] = (images, labels.astype(np.int64) - offset)
    return Split(split, *loaded["train"], *loaded["test"], classes=classes)


# ----------------------------------------------------------------------------------------------- datasets
@dataclass
class Dataset:
    """What training needs: train/val/test as (uint8 N×28×28, int64 N) tensors, classes as characters."""
    name: str
    classes: list[str]
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    test: tuple[torch.Tensor, torch.Tensor] | None

    def describe(self) -> dict:
        sizes = {k: (len(v[1]) if v is not None else 0) for k, v in (("train", self.train), ("val", self.val),
                                                                     ("test", self.test))}
        return {"name": self.name, "num_classes": len(self.classes), "classes": "".join(self.classes), **sizes,
                "test_sha256": self.test_sha256()}

    def test_sha256(self) -> str:
        """Names the test images: models whose model.json records the same one were tested on the same images."""
        if self.test is None:
            return ""
        digest = hashlib.sha256(self.test[1].numpy().tobytes())
        digest.update(self.test[0].numpy().tobytes())
        return digest.hexdigest()


def parse_classes(spec: str, num_classes: int) -> list[int]:
    """'0-9,36,40-41' -> sorted list of label indices, each checked against the split's class count."""
    chosen: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        try:
            lo, _, hi = part.partition("-")
            rng = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            raise DataError(f"--classes: cannot parse {part!r} (expected e.g. '0-35' or '0-9,36')") from None
        if not rng or rng.start < 0 or rng.stop > num_classes:
            raise DataError(f"--classes: {part!r} is outside 0..{num_classes - 1}")
        chosen.update(rng)
    if len(chosen) < 2:
        raise DataError(f"--classes {spec!r}: need at least two classes")
    return sorted(chosen)


def parse_ratios(spec: str) -> tuple[float, float, float]:
    try:
        ratios = tuple(float(x) for x in spec.split(","))
    except ValueError:
        ratios = ()
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6 or ratios[0] == 0:
        raise DataError(f"--resplit {spec!r}: expected three ratios train,val,test summing to 1, e.g. 0.7,0.2,0.1")
    return ratios  # type: ignore[return-value]


def stratified_split(labels: np.ndarray, ratios, seed: int) -> list[np.ndarray]:
    """Per class, shuffle with a fixed seed and cut by ratios; returns one sorted index array per part."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in ratios]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        cuts = np.round(np.cumsum(ratios)[:-1] * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _tensors(images: np.ndarray, labels: np.ndarray, idx: np.ndarray | None = None):
    if idx is not None:
        images, labels = images[idx], labels[idx]
    return torch.from_numpy(np.array(images)), torch.from_numpy(np.array(labels))  # copies out of the mmap


# The split is part of the dataset, not of a run: every training seed gets the same train/val/test images, so that
# runs are compared on one test set and can be ensembled without a member having trained on another's test images.
SPLIT_SEED = 0


def build_dataset(split: str, data_dir: str | None = None, classes: str = "", resplit: str = "",
                  val_fraction: float = 0.1, download: bool = True) -> Dataset:
    """A split plus options: class subset, pooled stratified re-split, or a validation share carved from train."""
    if split in ALIASES:
        split, alias_classes, alias_resplit = ALIASES[split]
        classes, resplit = classes or alias_classes, resplit or alias_resplit
    if split == "folder":
        images, labels, names = load_folder(Path(data_dir or "."))
        train_x, train_y, test_x, test_y = images, labels, images[:0], labels[:0]
        resplit = resplit or "0.8,0.1,0.1"
    else:
        s = load_split(split, data_dir, download)
        names, train_x, train_y = s.classes, s.train_images, s.train_labels
        test_x, test_y = s.test_images, s.test_labels
    if classes:
        keep = parse_classes(classes, len(names))
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        tr, te = np.isin(train_y, keep), np.isin(test_y, keep)
        train_x, train_y, test_x, test_y = train_x[tr], remap[train_y[tr]], test_x[te], remap[test_y[te]]
        names = [names[k] for k in keep]
    name = split + (f"[{classes}]" if classes else "")
    if resplit:
        ratios = parse_ratios(resplit)
        x, y = np.concatenate([train_x, test_x]), np.concatenate([train_y, test_y])
        tr, va, te = stratified_split(y, ratios, SPLIT_SEED)
        return Dataset(f"{name} resplit {resplit}", names, _tensors(x, y, tr),
                       _tensors(x, y, va) if len(va) else None, _tensors(x, y, te) if len(te) else None)
    val = None
    if val_fraction > 0:
        tr, va = stratified_split(train_y, (1 - val_fraction, val_fraction), SPLIT_SEED)
        val = _tensors(train_x, train_y, va)
        train_x, train_y = train_x[tr], train_y[tr]
    return Dataset(name, names, _tensors(train_x, train_y), val, _tensors(test_x, test_y) if len(test_y) else None)




def resolve_split(cfg: Config) -> Config:
    """A --data-dir that is an image folder (class sub-folders, no EMNIST files) means split 'folder', whatever
    the split says, from the CLI and from Python alike."""
    return cfg.replace(split="folder") if cfg.split != "folder" and is_image_folder(cfg.data_dir) else cfg


def dataset_for(cfg: Config, download: bool = True) -> Dataset:
    """The dataset a configuration names: training, evaluation, the report and export all build it here."""
    cfg = resolve_split(cfg)
    return build_dataset(cfg.split, cfg.data_dir or None, cfg.classes, cfg.resplit, cfg.val_fraction, download)
