"""Averaging predictions: an ensemble of models, and test-time augmentation by one-pixel shifts.

Both are modules whose output is log(mean class probability), so evaluate(), the report and serving use them
like any model (softmax of the output gives back the averaged probabilities).
"""
from __future__ import annotations

import torch
from torch import nn

from ..data import normalize
from ..errors import ModelFileError


def check_members(metas: list[dict]) -> None:
    """Refuse models (their model.json) that cannot be averaged: different classes, or different splits of one
    pool, where each trained on part of the others' test images, so their ensemble would be tested on images it has
    seen. (Models whose model.json lacks test_sha256 can't tell.)"""
    if any(meta["classes"] != metas[0]["classes"] for meta in metas):
        raise ModelFileError("the models were trained on different classes: "
                         + ", ".join(repr("".join(meta["classes"])) for meta in metas))
    tested_on: dict[str, set[str]] = {}
    for meta in metas:
        dataset = meta.get("dataset", {})
        if dataset.get("test_sha256"):
            tested_on.setdefault(dataset["name"], set()).add(dataset["test_sha256"])
    for name, digests in tested_on.items():
        if len(digests) > 1:
            raise ModelFileError(f"the models were trained on different splits of {name} (model.json "
                                 f"dataset.test_sha256 differs): some were trained on images that are test images "
                                 f"of others")


class Ensemble(nn.Module):
    """Members as (model, mean, std): each normalises the [0,1] input its own way; probabilities are averaged."""

    def __init__(self, members: list[tuple[nn.Module, float, float]]):
        super().__init__()
        self.models = nn.ModuleList(m for m, _, _ in members)
        self.norms = [(mean, std) for _, mean, std in members]

    def forward(self, x):
        probs = sum(torch.softmax(m(normalize(x, mean, std)).float(), 1)
                    for m, (mean, std) in zip(self.models, self.norms))
        return (probs / len(self.models)).log()


class ShiftTTA(nn.Module):
    """Test-time augmentation: the mean probability over the image and its four one-pixel shifts."""
    shifts = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        probs = sum(torch.softmax(self.model(torch.roll(x, s, dims=(2, 3))).float(), 1) for s in self.shifts)
        return (probs / len(self.shifts)).log()
