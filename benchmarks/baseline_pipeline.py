"""The pipeline as the original 36-class notebook wrote it: the baseline that speed.py compares against.

An image-folder Dataset that opens one PNG per sample, per-sample PIL transforms (RandomRotation(10) with NEAREST
resampling, ToTensor, Normalize(0.5, 0.5)), DataLoader(batch_size=64, shuffle=True), fp32, and loss.item() plus
accuracy every step. torchvision cannot be imported with the CPU torch here, so its few transforms are written out
with Pillow (same semantics: rotation about the centre, fill 0, [0,1] scaling, (x-0.5)/0.5).
"""
from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset


def write_png_folder(images: np.ndarray, labels: np.ndarray, classes: list[str], root: Path) -> Path:
    """The notebook's input: one sub-folder per class with one PNG per image."""
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
    for i, (img, y) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(root / classes[y] / f"{i}.png")
    return root


class ImageFolderDataset(Dataset):
    def __init__(self, root: Path, train: bool):
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.samples = [(f, k) for k, c in enumerate(self.classes) for f in sorted((root / c).iterdir())]
        self.train = train

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        img = Image.open(path).convert("L")
        if self.train:  # RandomRotation(10)
            img = img.rotate(random.uniform(-10, 10), resample=Image.NEAREST, fillcolor=0)
        x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)  # ToTensor
        return (x - 0.5) / 0.5, label  # Normalize((0.5,), (0.5,))


def train_images(model, root: Path, num_images: int, batch_size: int = 64, lr: float = 1e-3) -> dict:
    """Train on num_images images the notebook's way; returns images/s."""
    loader = DataLoader(ImageFolderDataset(root, train=True), batch_size=batch_size, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    seen, start = 0, time.perf_counter()
    while seen < num_images:
        for x, y in loader:
            optimizer.zero_grad()
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss.backward()
            optimizer.step()
            running_loss = loss.item()  # noqa: F841 - the notebook logs these every step
            running_acc = (out.argmax(1) == y).float().mean().item()  # noqa: F841
            seen += len(y)
            if seen >= num_images:
                break
    seconds = time.perf_counter() - start
    return {"images": seen, "seconds": seconds, "images_per_second": seen / seconds}


@torch.no_grad()
def evaluate_images(model, root: Path, batch_size: int = 64) -> dict:
    loader = DataLoader(ImageFolderDataset(root, train=False), batch_size=batch_size, shuffle=False)
    model.eval()
    correct = seen = 0
    start = time.perf_counter()
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        seen += len(y)
    seconds = time.perf_counter() - start
    return {"images": seen, "seconds": seconds, "images_per_second": seen / seconds, "accuracy": correct / seen}
