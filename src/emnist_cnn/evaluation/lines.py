"""Evaluating a line model: character error rate and exact lines on synthetic lines, read greedily.

CER is the Levenshtein distance between what was read and the truth, over the truth's length, case-insensitive
(ByMerge answers "C" for c and C alike, so case cannot count where the model cannot tell it), with rapidfuzz's
edit distance.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import normalize
from ..data.lines import CharacterBank, Spacing, batch_of_lines
from ..models.line_models import greedy
from ..runtime import autocast


def text_of(indices, classes: list[str]) -> str:
    return "".join(classes[i] for i in indices)


def errors(read: str, truth: str) -> int:
    from rapidfuzz.distance import Levenshtein
    return Levenshtein.distance(read.lower(), truth.lower())


def score(reads: list[str], truths: list[str]) -> dict:
    """CER (edits over truth characters, case-insensitive) and the share of lines read exactly."""
    edits = sum(errors(r, t) for r, t in zip(reads, truths))
    chars = sum(len(t) for t in truths)
    exact = sum(r.lower() == t.lower() for r, t in zip(reads, truths))
    return {"cer": edits / max(chars, 1), "exact": exact / max(len(truths), 1), "lines": len(truths)}


@torch.no_grad()
def line_log_probs(model, images: torch.Tensor, widths: torch.Tensor, mean: float, std: float, device,
                   precision: str = "fp32") -> list[np.ndarray]:
    """Per line, log-probabilities steps×(classes+1) over its own width (padding columns cut off)."""
    model.eval()
    x = normalize(images.to(device), mean, std)
    with autocast(device, precision):
        out = model(x.contiguous(memory_format=torch.channels_last))
    lp = out.float().log_softmax(-1).cpu().numpy()
    steps = (widths // model.stride).clamp(min=1, max=lp.shape[1]).tolist()
    return [lp[i, :t] for i, t in enumerate(steps)]


def evaluate_lines(model, bank: CharacterBank, lines: int, seed: int, mean: float, std: float, device,
                   precision: str = "fp32", spacing: Spacing = Spacing(), kinds=None, batch_size: int = 128
                   ) -> dict:
    """Greedy CER and exact lines on `lines` synthetic lines of the bank's characters (seed fixes them)."""
    classes, blank = bank.classes, len(bank.classes)
    reads, truths = [], []
    for b in range((lines + batch_size - 1) // batch_size):
        batch = batch_of_lines(bank, min(batch_size, lines - b * batch_size), seed, b, spacing, kinds)
        for lp, target in zip(line_log_probs(model, batch.images, batch.widths, mean, std, device, precision),
                              batch.targets):
            reads.append(text_of(greedy(lp, blank), classes))
            truths.append(text_of(target, classes))
    return score(reads, truths)
