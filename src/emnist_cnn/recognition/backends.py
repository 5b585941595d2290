"""Backends run a model for the Recognizer: PyTorch (a run directory, model directory or pretrained name) or
ONNX Runtime (an exported .onnx file). A backend has `meta` (its model.json: classes, normalize, architecture,
...), `classes`, and `logits(batch)` for a float32 N×1×28×28 batch already normalised, so that another runtime
can replace PyTorch without touching the Recognizer or the web server.
"""
from __future__ import annotations

import os
from typing import Callable, Protocol

import numpy as np
import torch

from ..models import load_model


class Backend(Protocol):
    meta: dict
    classes: list[str]

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """A PyTorch model from a run directory, model directory or pretrained name (via checkpoint.load_model)."""

    def __init__(self, model, meta: dict):
        self.model = model.to(memory_format=torch.channels_last)  # 2-3x faster batches on oneDNN
        self.meta, self.classes = meta, list(meta["classes"])

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, device: str = "cpu") -> "TorchBackend":
        from ..runtime import resolve_device
        return cls(*load_model(name_or_path, resolve_device(device)))

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            x = x.to(next(self.model.parameters()).device).contiguous(memory_format=torch.channels_last)
            return self.model(x).float().cpu().numpy()


def onnxruntime_backend(path: str | os.PathLike, device: str = "cpu") -> Backend:
    """An exported .onnx file (emnist-cnn export) under onnxruntime, on the CPU."""
    from ..errors import ConfigError
    from .onnx import OnnxBackend
    if device not in ("cpu", "auto"):
        raise ConfigError(f"device {device!r}: the onnxruntime backend runs on the CPU here (--device cpu)")
    return OnnxBackend(path)


# name -> loader(name_or_path, device) -> Backend
BACKENDS: dict[str, Callable[[str, str], Backend]] = {"torch": TorchBackend.load, "onnxruntime": onnxruntime_backend}


