"""Evaluating a line model: character error rate and exact lines on synthetic lines, read greedily.

`line_metrics` is what a line run's metrics.json holds (training/lines.py writes it, `emnist-cnn evaluate`
recomputes it): CER and exact lines on the training mix and on each of the benchmark's spacings.

CER is the Levenshtein distance between what was read and the truth, over the truth's length, case-insensitive
(ByMerge answers "C" for c and C alike, so case cannot count where the model cannot tell it), with rapidfuzz's
edit distance.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import normalize
from ..data.lines import SPACINGS, CharacterBank, Spacing, batch_of_lines
from ..models.line_models import TRAIL, greedy
from ..runtime import autocast

CHARS_PER_LINE = 10   # about the mean of the text mix (data/lines.py TextMix)
TEST_LINES = 2000     # test lines of the training mix at most, a quarter as many per benchmark spacing


def lines_for(characters: int, most: int) -> int:
    """Enough lines to use each character about once, 16 to `most`."""
    return min(most, max(16, characters // CHARS_PER_LINE))


def test_seed(seed: int) -> int:
    """The seed of a run's test lines: its own seed's stream, apart from its training and validation lines."""
    return seed + 2


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
    """Per line, log-probabilities steps×(classes+1) over its own width (padding columns cut off). The batch gets
    TRAIL blank columns more, as recognition/lines.py reads, so that the longest line is not read at the edge."""
    model.eval()
    x = normalize(torch.nn.functional.pad(images, (0, TRAIL)).to(device), mean, std)
    with autocast(device, precision):
        out = model(x.contiguous(memory_format=torch.channels_last))
    lp = out.float().log_softmax(-1).cpu().numpy()
    steps = (widths // model.stride).clamp(min=1, max=lp.shape[1]).tolist()
    return [lp[i, :t] for i, t in enumerate(steps)]


def read_synthetic(model, bank: CharacterBank, lines: int, seed: int, mean: float, std: float, device,
                   precision: str = "fp32", spacing: Spacing = Spacing(), kinds=None, batch_size: int = 128
                   ) -> tuple[list[np.ndarray], list[str], list[str]]:
    """`lines` synthetic lines of the bank's characters (seed fixes them): each line's image cut to its width,
    its truth and the model's greedy reading."""
    classes, blank = bank.classes, len(bank.classes)
    images, truths, reads = [], [], []
    for b in range((lines + batch_size - 1) // batch_size):
        batch = batch_of_lines(bank, min(batch_size, lines - b * batch_size), seed, b, spacing, kinds)
        for image, width, target, lp in zip(batch.images, batch.widths, batch.targets,
                                            line_log_probs(model, batch.images, batch.widths, mean, std, device,
                                                           precision)):
            images.append(image[0, :, :int(width)].numpy())
            truths.append(text_of(target, classes))
            reads.append(text_of(greedy(lp, blank), classes))
    return images, truths, reads


def evaluate_lines(model, bank: CharacterBank, lines: int, seed: int, mean: float, std: float, device,
                   precision: str = "fp32", spacing: Spacing = Spacing(), kinds=None, batch_size: int = 128
                   ) -> dict:
    """Greedy CER and exact lines on `lines` synthetic lines of the bank's characters (seed fixes them)."""
    _, truths, reads = read_synthetic(model, bank, lines, seed, mean, std, device, precision, spacing, kinds,
                                      batch_size)
    return score(reads, truths)


def line_metrics(model, part: tuple, classes: list[str], seed: int, mean: float, std: float, device,
                 precision: str = "fp32") -> dict:
    """Greedy CER and exact lines on lines of a part's characters (images, labels): as many lines of the
    training mix ("mixed") as use each character about once (TEST_LINES at most), a quarter as many of each
    benchmark spacing (spaced, tight, touching); the lines of test_seed(seed)."""
    bank, lines = CharacterBank(*part, classes), lines_for(len(part[1]), TEST_LINES)
    return {name: evaluate_lines(model, bank, lines if name == "mixed" else lines // 4, test_seed(seed), mean, std,
                                 device, precision, spacing)
            for name, spacing in {"mixed": Spacing(), **SPACINGS}.items()}
