"""The model registry and the contract every architecture keeps.

create_model(name, num_classes) builds a registered architecture. Every model takes N×1×28×28 and returns
N×classes logits, and is an EmnistModel: a feature extractor `features` and a head `classifier` whose last layer is
the linear classifier, with
- forward_features(x): the last feature map (what the head reads),
- reset_classifier(num_classes): a fresh linear classifier for another class count (fine-tuning),
- gradcam_layer: the name of the module whose output Grad-CAM explains,
- freeze_stages(n): keep the first n stages of the feature extractor fixed (fine-tuning with --freeze).
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice ({_REGISTRY[name].__module__}."
                             f"{_REGISTRY[name].__qualname__} and {fn.__module__}.{fn.__qualname__})")
        _REGISTRY[name] = fn
        return fn
    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, num_classes: int, **kwargs) -> "EmnistModel":
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return factory(num_classes=num_classes, **kwargs)


def reads(name: str) -> str:
    """What a registered model reads, without building it: "character" (28×28) or "line" (line_models.py)."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return getattr(_REGISTRY[name], "reads", "character")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Named convolution layers in forward order (for activation maps and filters)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


class EmnistModel(nn.Module):
    """The contract (module docstring). Subclasses set self.features, self.classifier and self.gradcam_layer."""
    features: nn.Module
    classifier: nn.Sequential
    gradcam_layer: str
    reads = "character"  # what one input is: a 28×28 "character", or a "line" (line_models.py)

    def forward_features(self, x):
        return self.features(x)

    def forward(self, x):
        return self.classifier(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        old = self.classifier[-1]
        self.classifier[-1] = nn.Linear(old.in_features, num_classes).to(old.weight.device)

    def stages(self) -> list[list[nn.Module]]:
        """The feature extractor in stages: each starts at a child of `features` that holds a convolution and
        takes the children after it up to the next one (its norm, pooling, activation); a ResNet block is one."""
        stages: list[list[nn.Module]] = []
        for child in self.features.children():
            holds_conv = isinstance(child, nn.Conv2d) or any(isinstance(m, nn.Conv2d) for m in child.modules())
            if holds_conv or not stages:
                stages.append([child])
            else:
                stages[-1].append(child)
        return stages

    def freeze_stages(self, n: int) -> None:
        stages = self.stages()
        if n > len(stages):
            raise ConfigError(f"freeze {n}: this model has {len(stages)} feature stages")
        for module in (m for stage in stages[:n] for child in stage for m in child.modules()):
            for p in module.parameters(recurse=False):
                p.requires_grad_(False)
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.0  # keep the source's running statistics too
