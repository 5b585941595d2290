"""The architectures: each registered by name and built on the EmnistModel contract (registry.py)."""
from __future__ import annotations

import torch
from torch import nn

from .registry import EmnistModel, register


@register("cnn3")
class CNN3(EmnistModel):
    """The original 36-class project's network: 425,380 parameters at 36 classes."""

    def __init__(self, num_classes: int = 36, dropout: float = 0.5):
        super().__init__()
        def block(cin, cout):
            # conv -> max-pool -> ReLU computes exactly conv -> ReLU -> max-pool (both are monotonic), with the
            # ReLU (and its backward pass) on a quarter of the values: faster where memory bandwidth is the limit.
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(inplace=True))
        self.features = nn.Sequential(block(1, 32), block(32, 64), block(64, 128))  # 28 -> 14 -> 7 -> 3
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 3 * 3, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(128, num_classes))
        self.gradcam_layer = "features.2.0"  # the last convolution, at 7x7


@register("tiny-cnn")
class TinyCNN(EmnistModel):
    """The original digits project's network. Its README says ~1,274 parameters; the layers it describes have 1,138."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 2, 5), nn.ReLU(), nn.MaxPool2d(2),      # 28 -> 24 -> 12
            nn.Conv2d(2, 4, 3), nn.Sigmoid(), nn.MaxPool2d(2))   # 12 -> 10 -> 5
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(4 * 5 * 5, num_classes))
        self.gradcam_layer = "features.3"  # the last convolution, at 10x10


def conv_bn(cin: int, cout: int, k: int = 3, pool: bool = False) -> nn.Sequential:
    """conv -> BN (-> max-pool) -> ReLU; pooling before the ReLU gives the same values with 4x less ReLU work."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         *([nn.MaxPool2d(2)] if pool else []), nn.ReLU(inplace=True))


class PlainCNN(EmnistModel):
    """Convolution stages, then dropout and one linear layer on the flattened last feature map."""

    def __init__(self, features: nn.Sequential, flat: int, num_classes: int, dropout: float, gradcam_layer: str):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, num_classes))
        self.gradcam_layer = gradcam_layer


def fast_cnn_layers(widths) -> nn.Sequential:
    """Built for CPU throughput: three conv-BN-ReLU stages, each halving the resolution (28 -> 14 -> 7 -> 3).
    Compute sits in the 14x14 and 7x7 stages; BatchNorm allows large learning rates."""
    w1, w2, w3 = widths
    return nn.Sequential(conv_bn(1, w1, pool=True), conv_bn(w1, w2, pool=True), conv_bn(w2, w3, pool=True))


@register("fast-cnn")
def fast_cnn(num_classes: int, dropout: float = 0.0) -> nn.Module:
    return PlainCNN(fast_cnn_layers((32, 64, 128)), 128 * 9, num_classes, dropout, "features.2.0")


@register("fast-cnn-s")
def fast_cnn_small(num_classes: int, dropout: float = 0.0) -> nn.Module:
    return PlainCNN(fast_cnn_layers((16, 32, 64)), 64 * 9, num_classes, dropout, "features.2.0")


@register("fast-cnn-xs")
def fast_cnn_xs(num_classes: int, dropout: float = 0.0) -> nn.Module:
    """tiny-cnn's layout (5x5 valid conv, pool, 3x3 valid conv, pool, linear) widened to 16/32 with BatchNorm:
    13k parameters that train at over 10k images/s on two CPU cores."""
    features = nn.Sequential(
        nn.Conv2d(1, 16, 5, bias=False), nn.BatchNorm2d(16), nn.MaxPool2d(2), nn.ReLU(inplace=True),   # 24 -> 12
        nn.Conv2d(16, 32, 3, bias=False), nn.BatchNorm2d(32), nn.MaxPool2d(2), nn.ReLU(inplace=True))  # 10 -> 5
    return PlainCNN(features, 32 * 5 * 5, num_classes, dropout, "features.4")


def vgg_emnist_layers(widths) -> nn.Sequential:
    """One conv at 28x28 (pooled to 14), two at 14x14, two at 7x7 (pooled to 3x3)."""
    w1, w2, w3, w4, w5 = widths
    return nn.Sequential(conv_bn(1, w1, pool=True), conv_bn(w1, w2), conv_bn(w2, w3, pool=True),
                         conv_bn(w3, w4), conv_bn(w4, w5, pool=True))


@register("vgg-emnist")
def vgg_emnist(num_classes: int, dropout: float = 0.2) -> nn.Module:
    """VGG-style with BatchNorm, sized for a CPU: a linear head on the 3x3 map. Twice fast-cnn's depth at 14x14 and
    7x7, where handwriting's strokes are resolved."""
    return PlainCNN(vgg_emnist_layers((32, 64, 64, 128, 128)), 128 * 9, num_classes, dropout, "features.4.0")


@register("vgg-emnist-wide")
def vgg_emnist_wide(num_classes: int, dropout: float = 0.2) -> nn.Module:
    """vgg-emnist at 1.5x the width: 2.1x the parameters, half the training speed on a CPU."""
    return PlainCNN(vgg_emnist_layers((48, 96, 96, 192, 192)), 192 * 9, num_classes, dropout, "features.4.0")


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(EmnistModel):
    """Stem conv, stages of basic blocks (the first block of each stage after the first halves the resolution),
    global average pooling, dropout, linear head."""

    def __init__(self, num_classes: int, stem: int, widths, blocks, dropout: float = 0.0, stem_pool: bool = False):
        super().__init__()
        layers = [conv_bn(1, stem, pool=stem_pool)]
        cin = stem
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, stride=2 if (j == 0 and i > 0) else 1))
                cin = w
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(cin, num_classes))
        self.gradcam_layer = f"features.{len(layers) - 1}"  # the last residual block's output, not a shortcut
        for m in self.modules():  # zero-init the last BN of each residual branch: blocks start as identities
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)


@register("resnet-emnist")
def resnet_emnist(num_classes: int, dropout: float = 0.1) -> nn.Module:
    """Compact ResNet for 28x28 on a CPU budget: 14x14 -> 7x7 -> 4x4 stages of 64/128/256, 1.5M parameters."""
    return ResNet(num_classes, stem=32, widths=(64, 128, 256), blocks=(1, 2, 1), dropout=dropout, stem_pool=True)


@register("resnet18")
def resnet18(num_classes: int, dropout: float = 0.0) -> nn.Module:
    """torchvision's ResNet-18 as practitioners adapt it to 1x28x28: only the stem takes one channel. 7x7 stride-2
    conv + 3x3 stride-2 max-pool (28 -> 14 -> 7), basic blocks 2-2-2-2 of 64-512 channels (7, 4, 2, 1 pixels)."""
    model = ResNet(num_classes, stem=64, widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), dropout=dropout)
    model.features[0] = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
    return model
