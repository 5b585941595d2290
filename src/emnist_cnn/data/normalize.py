"""The one input normalisation: pixels scaled to [0, 1], then (x - mean) / std with the model's own mean and std
(model.json `normalize`). Training, evaluation, recognition and ensembles all call it."""
from __future__ import annotations

import torch


def normalize(x, mean: float, std: float):
    """(x - mean) / std for pixels already in [0, 1]; torch tensors and numpy arrays alike."""
    return (x - mean) / std if (mean or std != 1.0) else x


def to_input(images_u8: torch.Tensor, mean: float, std: float, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×28×28 -> normalised float N×1×28×28."""
    x = normalize(images_u8.unsqueeze(1).float().div_(255.0), mean, std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
