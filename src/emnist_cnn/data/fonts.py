"""Writing that is not EMNIST: text in a Hershey stroke font, drawn with a round pen as a tablet or a canvas draws
it. The foreign test material of benchmarks/read_foreign.py and of the line-reading tests (data/paper.py is the
photographed kind).

The fonts come from the PyPI package Hershey-Fonts (a dev dependency: nothing in the product needs it): vector
strokes, in hands from plain print (`futural`) to italic (`timesi`) and joined cursive (`scripts`).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

HEIGHT = 64  # cap height in pixels, before any scaling of the strokes


@functools.lru_cache(maxsize=None)
def hershey(font: str, height: int = HEIGHT):
    from HersheyFonts import HersheyFonts
    f = HersheyFonts()
    f.load_default_font(font)
    f.normalize_rendering(height)
    return f


def strokes(text: str, font: str = "futural", height: int = HEIGHT) -> list[np.ndarray]:
    """The text's pen strokes in the font: polylines of (x, y) points, y downwards, cap height `height`."""
    lines: list[list[tuple[float, float]]] = []
    for (x0, y0), (x1, y1) in hershey(font, height).lines_for_text(text):
        if lines and np.allclose(lines[-1][-1], (x0, -y0)):
            lines[-1].append((x1, -y1))  # the segment goes on from where the last one ended
        else:
            lines.append([(x0, -y0), (x1, -y1)])
    return [np.array(line) for line in lines]


def draw(lines: list[np.ndarray], pen: int, ink: int = 0, margin: int = 30) -> Image.Image:
    """Polylines drawn with a round pen `pen` pixels wide, ink of grey level `ink` on white, `margin` pixels of
    paper around them."""
    points = np.concatenate(lines)
    origin = points.min(axis=0) - margin
    w, h = (points.max(axis=0) - origin + margin).astype(int)
    img = Image.new("L", (int(w), int(h)), 255)
    pencil = ImageDraw.Draw(img)
    for line in lines:
        xy = [tuple(p) for p in line - origin]
        pencil.line(xy, fill=ink, width=pen, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            pencil.ellipse((x - pen / 2 + 0.5, y - pen / 2 + 0.5, x + pen / 2 - 0.5, y + pen / 2 - 0.5), fill=ink)
    return img


def written(text: str, font: str = "futural", pen: int = 4, height: int = HEIGHT) -> Image.Image:
    """The text in the font, upright, dark on white."""
    return draw(strokes(text, font, height), pen)
