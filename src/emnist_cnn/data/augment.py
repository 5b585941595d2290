"""Whole-batch augmentation on the device: one random affine (+ elastic) warp per image, in one grid_sample call."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, rotate: float = 0.0, shear: float = 0.0, scale: float = 0.0,
                  translate: float = 0.0, mode: str = "bilinear", generator: torch.Generator | None = None,
                  elastic: float = 0.0):
    """x: N×C×H×W floats with background 0. Angles in degrees, scale as ±fraction, translate as ±fraction of size.

    elastic: a smooth random displacement of up to ±elastic of the image size, drawn at 4×4 control points and
    interpolated (bicubic) over the image: strokes bend and thicken locally as in Simard et al.'s elastic
    distortions, at the cost of a tiny upsampling added to the affine grid.
    """
    n = x.shape[0]
    if not (rotate or shear or scale or translate or elastic):
        return x
    def uniform(limit):  # U(-limit, limit) per image
        return (torch.rand(n, device=x.device, generator=generator) * 2 - 1) * limit
    angle = uniform(math.radians(rotate))
    sh = uniform(math.radians(shear))
    zoom = 1 + uniform(scale)
    tx, ty = uniform(2 * translate), uniform(2 * translate)  # grid coordinates span [-1, 1], i.e. 2 units
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Inverse map (output pixel -> input pixel) of rotate·shear·zoom, as affine_grid expects.
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = cos / zoom
    theta[:, 0, 1] = (-sin + cos * torch.tan(sh)) / zoom
    theta[:, 1, 0] = sin / zoom
    theta[:, 1, 1] = (cos + sin * torch.tan(sh)) / zoom
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    if elastic:
        coarse = (torch.rand(n, 2, 4, 4, device=x.device, generator=generator) * 2 - 1) * (2 * elastic)
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1).to(x.dtype)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def random_erase(x: torch.Tensor, p: float, generator: torch.Generator | None = None,
                 area: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """With probability p per image, zero a random rectangle (aspect 0.3..3.3) covering `area` of the image."""
    if p <= 0:
        return x
    n, _, h, w = x.shape
    rand = lambda: torch.rand(n, device=x.device, generator=generator)  # noqa: E731
    target = (area[0] + (area[1] - area[0]) * rand()) * h * w
    aspect = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * rand())
    eh = torch.sqrt(target * aspect).clamp(1, h)
    ew = torch.sqrt(target / aspect).clamp(1, w)
    y0, x0 = rand() * (h - eh), rand() * (w - ew)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    box = ((ys >= y0.view(-1, 1, 1)) & (ys < (y0 + eh).view(-1, 1, 1)) &
           (xs >= x0.view(-1, 1, 1)) & (xs < (x0 + ew).view(-1, 1, 1)))
    apply = (rand() < p).view(-1, 1, 1)
    return x.masked_fill((box & apply).unsqueeze(1), 0.0)
