"""Model registry: create_model(name, num_classes). Every model takes N×1×28×28 and returns N×classes logits."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn):
        _REGISTRY[name] = fn
        return fn
    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return factory(num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@register("cnn3")
class CNN3(nn.Module):
    """The original 36-class project's network: 425,380 parameters at 36 classes."""

    def __init__(self, num_classes: int = 36, dropout: float = 0.5):
        super().__init__()
        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.features = nn.Sequential(block(1, 32), block(32, 64), block(64, 128))  # 28 -> 14 -> 7 -> 3
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


@register("tiny-cnn")
class TinyCNN(nn.Module):
    """The original digits project's network. Its README says ~1,274 parameters; the layers it describes have 1,138."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 2, 5), nn.ReLU(), nn.MaxPool2d(2),      # 28 -> 24 -> 12
            nn.Conv2d(2, 4, 3), nn.Sigmoid(), nn.MaxPool2d(2))   # 12 -> 10 -> 5
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Named convolution layers in forward order (for activation maps and filters)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]

