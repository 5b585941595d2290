"""Line models: read a whole line of handwriting, no segmentation, trained with CTC (Graves et al. 2006).

A CNN turns a LINE_HEIGHT-row line image of any width into a sequence of columns (one per 4 pixels), a
bidirectional LSTM gives each column the context of the whole line, and a linear layer scores every class plus
CTC's blank (the last index) per column. This is the CRNN of Shi et al. (2015) and the line reader of the Full
Stack Deep Learning text recogniser, sized for a 2-core CPU.

The EmnistModel contract holds (forward_features is the CNN's feature map, the classifier ends in the linear layer,
reset_classifier and freeze_stages work); what differs is the input (N×1×32×W) and the output (N×W/4×(classes+1)).
"""
from __future__ import annotations

import numpy as np
from torch import nn

from .architectures import conv_bn
from .registry import EmnistModel, register

TRAIL = 8  # blank columns after every line a line model reads: in training, a line is followed by its batch's
           # padding (lines of similar lengths, so a few columns); read with none, a line's last character was
           # read worse (validation lines: 11 of 2,400 read better with 8, none worse). recognition/lines.py and
           # evaluation/lines.py both read with them (lines47's test figures: the same within 1 line of 2,000).


def greedy(log_probs: np.ndarray, blank: int) -> list[int]:
    """What a line model's output says at its most probable (the best path): the most probable class per step,
    repeats collapsed, blanks dropped. recognition/decode.py searches further."""
    best = log_probs.argmax(axis=-1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return [int(k) for k in best[keep] if k != blank]


class ColumnSequence(nn.Module):
    """N×C×H×T feature map -> N×T×(C·H) sequence, one step per column."""

    def forward(self, x):
        return x.permute(0, 3, 1, 2).flatten(2)


class BiLSTM(nn.Module):
    """A bidirectional LSTM that returns only its outputs (nn.LSTM also returns its states)."""

    def __init__(self, size_in: int, hidden: int, layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(size_in, hidden, num_layers=layers, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.lstm(x)[0]


class LineModel(EmnistModel):
    reads = "line"
    height = 32  # the rows it reads (data/lines.py LINE_HEIGHT)
    stride = 4   # input columns per output step

    def __init__(self, features: nn.Sequential, feature_size: int, num_classes: int, hidden: int,
                 dropout: float, gradcam_layer: str):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(ColumnSequence(), BiLSTM(feature_size, hidden), nn.Dropout(dropout),
                                        nn.Linear(2 * hidden, num_classes + 1))  # + CTC's blank, the last index
        self.gradcam_layer = gradcam_layer

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes + 1)


@register("crnn")
def crnn(num_classes: int, dropout: float = 0.2) -> LineModel:
    """32 rows -> 16 -> 8 -> 4 -> 2 while columns go down only 4x (the sequence keeps ~5 steps per character);
    128 channels × 2 rows per step into a 128+128 BiLSTM."""
    features = nn.Sequential(
        conv_bn(1, 32, pool=True),                                                  # 16 × W/2
        conv_bn(32, 64, pool=True),                                                 # 8 × W/4
        conv_bn(64, 96), conv_bn(96, 96), nn.MaxPool2d((2, 1)),                     # 4 × W/4
        conv_bn(96, 128), nn.MaxPool2d((2, 1)))                                     # 2 × W/4
    return LineModel(features, 128 * 2, num_classes, hidden=128, dropout=dropout, gradcam_layer="features.3.0")


@register("crnn-wide")
def crnn_wide(num_classes: int, dropout: float = 0.2) -> LineModel:
    """crnn about twice as wide (48-96-128-128-160 channels, a 192+192 BiLSTM), at about crnn's training cost:
    its first convolution reads the 32 rows with stride 2 (a 4×4 kernel), so no layer works at the full 32 rows.
    In crnn that full-size stage (32 channels × 32 rows × W: its convolution's output, batch norm, pooling) was
    memory traffic, not arithmetic, and took over a third of a training step on a 2-core CPU with bf16."""
    features = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 48, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(48),
                      nn.ReLU(inplace=True)),                                       # 16 × W/2
        conv_bn(48, 96, pool=True),                                                 # 8 × W/4
        conv_bn(96, 128), conv_bn(128, 128), nn.MaxPool2d((2, 1)),                  # 4 × W/4
        conv_bn(128, 160), nn.MaxPool2d((2, 1)))                                    # 2 × W/4
    return LineModel(features, 160 * 2, num_classes, hidden=192, dropout=dropout, gradcam_layer="features.3.0")


crnn.reads = crnn_wide.reads = "line"  # what registry.reads() tells without building the model
