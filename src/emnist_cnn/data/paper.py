"""A character on paper as a phone camera sees it: the test material of the photo benchmark and the photo tests.

photograph(char, conditions, rng) puts an EMNIST character (uint8 28×28, white on black) on off-white paper and
applies any of CONDITIONS: lighting gradient, shadow edge, ruled or squared paper, blue or pencil-grey ink, sensor
noise, blur, rotation, perspective tilt, JPEG compression, thin or thick ink. Each is drawn from a range, so a seed
gives a different but reproducible photo. The result is the encoded file (PNG, or JPEG for "jpeg").
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

CONDITIONS = ("gradient", "shadow", "ruled", "squared", "blue-ink", "pencil", "noise", "blur", "rotation",
              "perspective", "jpeg", "thin-ink", "thick-ink")
COMBINED = ("gradient", "shadow", "ruled", "blue-ink", "noise", "blur", "rotation", "perspective", "jpeg")
SIDE = 240       # the photo, pixels
GLYPH = 120      # the character's box in it


def ink_alpha(char_u8: np.ndarray, thickness: int = 0) -> np.ndarray:
    """The character as ink coverage 0-1 at GLYPH pixels; thickness > 0 thickens, < 0 thins the strokes."""
    img = Image.fromarray(char_u8).resize((GLYPH, GLYPH), Image.Resampling.BICUBIC)
    if thickness > 0:
        img = img.filter(ImageFilter.MaxFilter(2 * thickness + 1))
    elif thickness < 0:
        img = img.filter(ImageFilter.MinFilter(-2 * thickness + 1))
    return np.clip(np.asarray(img, dtype=np.float32) / 255.0, 0, 1)


def photograph(char_u8: np.ndarray, conditions=(), rng: np.random.Generator | None = None) -> bytes:
    rng = rng or np.random.default_rng(0)
    conditions = set(conditions)
    thickness = 3 if "thick-ink" in conditions else -2 if "thin-ink" in conditions else 0
    alpha = np.zeros((SIDE, SIDE), np.float32)
    top, left = (int(v) for v in rng.integers((SIDE - GLYPH) // 2 - 25, (SIDE - GLYPH) // 2 + 25, size=2))
    alpha[top:top + GLYPH, left:left + GLYPH] = ink_alpha(char_u8, thickness)
    paper = np.full((SIDE, SIDE, 3), rng.uniform(225, 245), np.float32) * np.array([1.0, 0.99, 0.96], np.float32)
    paper += rng.normal(0, 2.0, (SIDE, SIDE, 1))  # paper texture
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    if "ruled" in conditions or "squared" in conditions:
        pitch, phase = rng.uniform(22, 32), rng.uniform(0, 20)
        line_colour = np.array([150, 170, 205], np.float32)  # pale blue-grey print
        strength = rng.uniform(0.35, 0.6)
        rows = (np.abs(((yy + phase) % pitch) - pitch / 2) > pitch / 2 - 1.0).astype(np.float32)
        lines = rows if "ruled" in conditions else np.maximum(
            rows, (np.abs(((xx + phase) % pitch) - pitch / 2) > pitch / 2 - 1.0).astype(np.float32))
        mix = strength * lines[..., None]
        paper = paper * (1 - mix) + line_colour * mix
    if "blue-ink" in conditions:
        ink = np.array([rng.uniform(20, 50), rng.uniform(35, 70), rng.uniform(120, 170)], np.float32)
    elif "pencil" in conditions:
        ink = np.full(3, rng.uniform(95, 130), np.float32)
    else:
        ink = np.full(3, rng.uniform(15, 40), np.float32)
    image = paper * (1 - alpha[..., None]) + ink * alpha[..., None]
    light = np.ones((SIDE, SIDE), np.float32)
    if "gradient" in conditions:  # a lamp to one side: 55-100% of the light across the page
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * (xx - SIDE / 2) + np.sin(angle) * (yy - SIDE / 2)) / SIDE + 0.5
        light *= 0.55 + 0.45 * np.clip(ramp, 0, 1)
    if "shadow" in conditions:  # the phone's or the hand's shadow: a soft-edged half-plane at 40-60% light
        angle, offset = rng.uniform(0, 2 * np.pi), rng.uniform(0.25, 0.4) * SIDE
        d = np.cos(angle) * (xx - SIDE / 2) + np.sin(angle) * (yy - SIDE / 2) - offset
        light *= 1 - rng.uniform(0.4, 0.6) * np.clip(0.5 + d / 6, 0, 1)
    image *= light[..., None]
    if "noise" in conditions:
        image += rng.normal(0, rng.uniform(5, 10), image.shape)
    photo = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB")
    if "rotation" in conditions:
        photo = photo.rotate(rng.uniform(-10, 10), Image.Resampling.BILINEAR, fillcolor=tuple(int(v) for v in
                                                                                             paper[0, 0]))
    if "perspective" in conditions:  # the camera tilted: one side of the page nearer than the other
        k = rng.uniform(0.06, 0.12) * SIDE
        src = [(0, 0), (SIDE, 0), (SIDE, SIDE), (0, SIDE)]
        dst = [(k, 0), (SIDE - k, 0), (SIDE, SIDE), (0, SIDE)] if rng.random() < 0.5 else \
            [(0, k), (SIDE, 0), (SIDE, SIDE), (0, SIDE - k)]
        photo = photo.transform((SIDE, SIDE), Image.Transform.PERSPECTIVE, perspective_coefficients(dst, src),
                                Image.Resampling.BILINEAR, fillcolor=tuple(int(v) for v in paper[0, 0]))
    if "blur" in conditions:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.5)))
    buf = io.BytesIO()
    if "jpeg" in conditions:
        photo.save(buf, "JPEG", quality=int(rng.integers(50, 91)))
    else:
        photo.save(buf, "PNG")
    return buf.getvalue()


def perspective_coefficients(src, dst) -> list[float]:
    """The 8 coefficients PIL's PERSPECTIVE transform takes to map output points dst onto input points src."""
    rows = []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, np.float64)
    b = np.array([c for p in src for c in p], np.float64)
    return list(np.linalg.solve(a, b))
