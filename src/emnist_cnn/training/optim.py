"""Optimisation: the optimiser (no weight decay on norms and biases), the learning-rate schedule as a
multiplier per step, and an exponential moving average of the weights."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..config import Config
from ..errors import ConfigError


def make_optimizer(cfg: Config, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]  # norms and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fast = {"foreach": True} if device.type != "cuda" else {"fused": True}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, **fast)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, **fast)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, **fast)
    raise ConfigError(f"optimizer {cfg.optimizer!r}: expected adam, adamw or sgd")


def lr_factor(cfg: Config, step: int, steps_per_epoch: int) -> float:
    """Learning-rate multiplier at an optimiser step; 'step' equals StepLR stepped once per epoch."""
    total = cfg.epochs * steps_per_epoch
    if cfg.scheduler == "none":
        return 1.0
    if cfg.scheduler == "step":
        return cfg.gamma ** ((step // steps_per_epoch) // cfg.step_size)
    if cfg.scheduler == "cosine":
        warm = cfg.warmup_epochs * steps_per_epoch
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))
    if cfg.scheduler == "onecycle":  # linear up for 25% (from lr/25), then cosine down to ~0
        peak = 0.25 * total
        if step < peak:
            return 0.04 + 0.96 * step / peak
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - peak) / max(1, total - peak))))
    raise ConfigError(f"scheduler {cfg.scheduler!r}: expected step, onecycle, cosine or none")


class EMA:
    """Exponential moving average of a model's parameters and buffers, used for evaluation when enabled."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        ema_state, state = self.model.state_dict(), model.state_dict()
        for k, v in state.items():
            if v.dtype.is_floating_point:
                ema_state[k].lerp_(v, 1 - self.decay)
            else:
                ema_state[k].copy_(v)
