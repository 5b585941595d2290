import math

import pytest
import torch

from emnist_cnn.data.augment import random_affine, random_erase


def dot(n=64, size=28, at=(14, 14)):
    """A batch of images with one 2×2 bright square (centre of mass at `at` + 0.5)."""
    x = torch.zeros(n, 1, size, size)
    y, x0 = at
    x[:, :, y:y + 2, x0:x0 + 2] = 1.0
    return x


def centroid(x):
    h, w = x.shape[-2:]
    mass = x.sum(dim=(1, 2, 3))
    ys = (x.sum(dim=(1, 3)) * torch.arange(h)).sum(1) / mass
    xs = (x.sum(dim=(1, 2)) * torch.arange(w)).sum(1) / mass
    return ys, xs


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_no_augmentation_returns_the_input():
    x = dot()
    assert random_affine(x) is x
    assert random_erase(x, 0.0) is x


@pytest.mark.parametrize("translate", [0.1, 0.2])
def test_translation_moves_the_ink_at_most_the_given_fraction(translate):
    x = dot()
    out = random_affine(x, translate=translate, generator=seeded())
    ys, xs = centroid(out)
    limit = translate * 28 + 0.5
    assert (ys - 14.5).abs().max() <= limit and (xs - 14.5).abs().max() <= limit
    assert (ys - 14.5).abs().max() > limit / 3  # it does move
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.05)  # nothing falls off


def test_rotation_keeps_the_centre_and_the_ink():
    x = dot(at=(13, 13))  # the centre of rotation: the image centre
    out = random_affine(x, rotate=30, generator=seeded())
    ys, xs = centroid(out)
    assert torch.allclose(ys, torch.full_like(ys, 13.5), atol=0.3)
    far = dot(at=(4, 13))
    moved = random_affine(far, rotate=30, generator=seeded())
    fy, fx = centroid(moved)
    angle = torch.atan2(fx - 13.5, 13.5 - fy).abs()
    assert angle.max() <= math.radians(30) + 0.05 and angle.max() > math.radians(10)


def test_elastic_bends_locally_within_its_bound():
    x = dot(n=256)
    out = random_affine(x, elastic=0.05, generator=seeded())
    ys, xs = centroid(out)
    shift = torch.hypot(ys - 14.5, xs - 14.5)
    assert shift.max() <= 0.05 * 28 * math.sqrt(2) + 0.5
    assert shift.mean() > 0.2  # the dots did move
    # reproducible from the generator, different for another seed
    pair = torch.zeros(256, 1, 28, 28)
    pair[:, :, 8:10, 8:10] = 1.0
    warped = random_affine(pair, elastic=0.05, generator=seeded(1))
    assert torch.equal(warped, random_affine(pair, elastic=0.05, generator=seeded(1)))
    assert not torch.equal(warped, random_affine(pair, elastic=0.05, generator=seeded(2)))


def test_random_erase_zeroes_one_rectangle_of_the_given_area():
    x = torch.ones(500, 1, 28, 28)
    out = random_erase(x, 1.0, seeded(), area=(0.05, 0.2))
    erased = (out == 0).float().mean(dim=(1, 2, 3))
    assert erased.min() >= 0.02 and erased.max() <= 0.25
    some = random_erase(x, 0.5, seeded())
    hit = ((some == 0).flatten(1).any(1)).float().mean()
    assert 0.4 < hit < 0.6
