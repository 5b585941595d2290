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
        self.device = next(model.parameters()).device
        self.run = frozen(self.model) if self.device.type == "cpu" else self.model

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, device: str = "cpu") -> "TorchBackend":
        from ..runtime import resolve_device
        return cls(*load_model(name_or_path, resolve_device(device)))

    def logits(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            x = x.to(self.device).contiguous(memory_format=torch.channels_last)
            return self.run(x).float().cpu().numpy()


def frozen(model: torch.nn.Module):
    """The model as a frozen TorchScript graph: the same arithmetic without Python's per-module dispatch, which is
    most of the time for one image. The eager model where tracing
    fails (an architecture TorchScript cannot trace)."""
    try:
        with torch.inference_mode(False), torch.no_grad():
            example = torch.zeros(1, 1, 28, 28).contiguous(memory_format=torch.channels_last)
            return torch.jit.freeze(torch.jit.trace(model.eval(), example))
    except Exception:  # noqa: BLE001 - any failure: the eager model is always right, only slower
        return model


def onnxruntime_backend(path: str | os.PathLike, device: str = "cpu") -> Backend:
    """An exported .onnx file (emnist-cnn export) under onnxruntime, on the CPU."""
    from ..errors import ConfigError
    from .onnx import OnnxBackend
    if device not in ("cpu", "auto"):
        raise ConfigError(f"device {device!r}: the onnxruntime backend runs on the CPU here (--device cpu)")
    return OnnxBackend(path)


# name -> loader(name_or_path, device) -> Backend
BACKENDS: dict[str, Callable[[str, str], Backend]] = {"torch": TorchBackend.load, "onnxruntime": onnxruntime_backend}


