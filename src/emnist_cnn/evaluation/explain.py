"""Looking inside a network: activation maps of every convolution, SmoothGrad saliency and Grad-CAM on the layer
each architecture names as its Grad-CAM target (EmnistModel.gradcam_layer)."""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from ..data import to_input
from ..models import conv_layers

MAX_CHANNELS = 16         # layers with more channels show their strongest ones per input


def inspectable(model: torch.nn.Module) -> torch.nn.Module:
    """A float32 CPU copy whose activations are not overwritten in place (hooks must see each conv output)."""
    copy_ = copy.deepcopy(model).float().cpu().eval()
    for m in copy_.modules():
        if hasattr(m, "inplace"):
            m.inplace = False
    return copy_


def forward_with_outputs(model, x: torch.Tensor, layers: list[tuple[str, torch.nn.Module]]
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The logits, and the output of each named layer."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out))
             for name, layer in layers]
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    return logits, outputs


def _unit_max(t: torch.Tensor) -> np.ndarray:
    return (t / t.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1)).detach().numpy()


def saliency_and_gradcam(model, images_u8: torch.Tensor, mean: float, std: float, samples: int = 16,
                         noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """For the predicted class: SmoothGrad saliency (|d logit / d input| averaged over `samples` copies with
    Gaussian noise of `noise` × the input range; plain gradients are speckled) and Grad-CAM on the last
    target layer's output (model.gradcam_layer) of the clean input; each scaled to [0, 1] per image."""
    x = to_input(images_u8, mean, std)
    n = len(x)
    with torch.no_grad():
        target = model(x).argmax(1)
    gen = torch.Generator().manual_seed(0)
    jitter = torch.randn((samples - 1) * n, *x.shape[1:], generator=gen) * noise * float(x.max() - x.min())
    batch = torch.cat([x, x.repeat(samples - 1, 1, 1, 1) + jitter]).requires_grad_(True)  # the first n: clean
    name = model.gradcam_layer
    logits, outputs = forward_with_outputs(model, batch, [(name, model.get_submodule(name))])
    last = outputs[name]
    score = logits.gather(1, target.repeat(samples).view(-1, 1)).sum()  # images are independent in eval mode
    grad_x, grad_a = torch.autograd.grad(score, [batch, last])
    saliency = grad_x.abs().amax(1).view(samples, n, *x.shape[2:]).mean(0)
    cam = F.relu((grad_a[:n].mean((2, 3), keepdim=True) * last[:n]).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return _unit_max(saliency), _unit_max(cam)


@torch.no_grad()
def strongest_channels(model, images_u8: torch.Tensor, mean: float, std: float, keep: int = MAX_CHANNELS):
    """Per conv layer: (maps n×k×h×w, channel indices per input, channel count); all channels when few,
    else the `keep` with the largest mean activation for each input."""
    _, outputs = forward_with_outputs(model, to_input(images_u8, mean, std), conv_layers(model))
    layers = {}
    for name, out in outputs.items():
        k = out.shape[1]
        if k <= keep:
            idx = torch.arange(k).expand(len(out), k)
        else:
            idx = out.mean((2, 3)).topk(keep, dim=1).indices
        maps = torch.stack([out[i, idx[i]] for i in range(len(out))])
        layers[name] = (maps.numpy(), idx.tolist(), k)
    return layers


