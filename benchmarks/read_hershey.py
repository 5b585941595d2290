"""Reading writing that is not EMNIST: words and digit strings drawn in Hershey stroke fonts, read by `read`.

read.py measures lines composed from EMNIST characters, the material the line model was trained on (other
writers, but the same scans, the same strokes). Here the strokes come from elsewhere: the Hershey fonts (the PyPI
package Hershey-Fonts), vector strokes drawn with a round pen as a tablet or a canvas would, in three hands:
`futural` (plain print, the closest to neat handwriting), `timesi` (italic, with serifs) and `scripts` (joined
cursive: every letter of a word touches the next, what EMNIST never shows). Each line gets its own pen width
(3-6% of the line's height), slant (±8°), rotation (±2°) and size; the font sets the spacing. The texts are drawn
as read.py's are (English words by frequency in lowercase, Capitalised or UPPERCASE; digit strings), from another
seed. Nothing here was used to train anything. `read` widens strokes thinner than EMNIST's before reading
(data/lines.py line_form_of_writing); the last column reads without that, and the way of widening was chosen on
another seed (--seed 7 --n 80), not on this one. It is a check of how far the EMNIST-trained models carry.

    python benchmarks/read_hershey.py            # 150 lines per font and kind -> results/read_hershey.json
"""
from __future__ import annotations

import argparse
import functools
import io
import math
import sys
import time
from pathlib import Path
from unittest.mock import patch

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_figure, table, write_results  # noqa: E402
from read import read_all  # noqa: E402

from emnist_cnn.data.lines import line_form, sample_text  # noqa: E402
from emnist_cnn.evaluation.lines import score  # noqa: E402
from emnist_cnn.recognition import Recognizer  # noqa: E402
from emnist_cnn.recognition import lines as reading_lines  # noqa: E402

FONTS = ("futural", "timesi", "scripts")
KINDS = {"words": "letters", "digits": "digits"}  # kind of text -> the charset that is right for it
HEIGHT = 64  # the font's cap height in pixels, before each line's own size
AS_DRAWN = "lines + context + charset, strokes not widened"


@functools.lru_cache(maxsize=None)
def hershey(font: str):
    from HersheyFonts import HersheyFonts
    f = HersheyFonts()
    f.load_default_font(font)
    f.normalize_rendering(HEIGHT)
    return f


def strokes(font: str, text: str) -> list[np.ndarray]:
    """The text's pen strokes in the font, as polylines of (x, y) points, y downwards, cap height HEIGHT."""
    lines = []
    for (x0, y0), (x1, y1) in hershey(font).lines_for_text(text):
        if lines and np.allclose(lines[-1][-1], (x0, -y0)):
            lines[-1].append((x1, -y1))  # the segment goes on from where the last one ended
        else:
            lines.append([(x0, -y0), (x1, -y1)])
    return [np.array(line) for line in lines]


def drawn(font: str, text: str, rng: np.random.Generator) -> bytes:
    """A PNG of the text written in the font: dark ink on white, with this line's pen, slant, rotation and size."""
    lines = strokes(font, text)
    size = float(np.exp(rng.normal(0, 0.15)))
    slant, turn = math.radians(rng.uniform(-8, 8)), math.radians(rng.uniform(-2, 2))
    shear = np.array([[1, -math.tan(slant)], [0, 1]])
    rotate = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    lines = [p @ (rotate @ shear).T * size for p in lines]
    points = np.concatenate(lines)
    pen = max(2, round(HEIGHT * size * rng.uniform(0.03, 0.06)))
    margin = 30 + pen
    origin = points.min(axis=0) - margin
    w, h = (points.max(axis=0) - origin + margin).astype(int)
    img = Image.new("L", (int(w), int(h)), 255)
    draw = ImageDraw.Draw(img)
    for line in lines:
        xy = [tuple(p) for p in line - origin]
        draw.line(xy, fill=30, width=pen, joint="curve")
        for x, y in (xy[0], xy[-1]):  # round pen ends
            draw.ellipse((x - pen / 2 + 0.5, y - pen / 2 + 0.5, x + pen / 2 - 0.5, y + pen / 2 - 0.5), fill=30)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=150, help="lines per font and kind of text")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--figure", action="store_true", help="also draw docs/read_hershey.png (a line per font)")
    args = parser.parse_args()
    recognizer = Recognizer.load()
    readers = {"components": dict(reader="components"), "lines, greedy": dict(reader="lines", decoder="greedy"),
               "lines + context": dict(reader="lines"), "lines + context + charset": dict(reader="lines"),
               AS_DRAWN: dict(reader="lines")}
    results, rows = [], []
    for f, font in enumerate(FONTS):
        for k, (kind, charset) in enumerate(KINDS.items()):
            rng = np.random.default_rng([args.seed, f, k])
            truths = [sample_text(rng, kind) for _ in range(args.n)]
            files = [drawn(font, t, rng) for t in truths]
            cells = {}
            for name, options in readers.items():
                if "charset" in name:
                    options = {**options, "charset": charset}
                start = time.perf_counter()
                if name == AS_DRAWN:  # what read did before it widened thin strokes: the form of the ink as it is
                    with patch.object(reading_lines, "line_form_of_writing", line_form):
                        reads = read_all(recognizer, files, **options)
                else:
                    reads = read_all(recognizer, files, **options)
                s = score(reads, truths)
                results.append({"font": font, "kind": kind, "reader": name, **s,
                                "ms_per_line": 1000 * (time.perf_counter() - start) / len(files),
                                "examples": [[t, r] for t, r in zip(truths[:5], reads[:5])]})
                cells[name] = f"{100 * s['cer']:.1f}% / {100 * s['exact']:.1f}%"
                print(f"{font} {kind} {name}: CER {s['cer']:.4f} exact {s['exact']:.3f}", flush=True)
            rows.append({"font": font, "text": kind, **cells})
    path = write_results("read_hershey", {
        "data": "Hershey stroke fonts (PyPI Hershey-Fonts), not EMNIST; texts as read.py's, seed "
                f"{args.seed}", "lines_per_cell": args.n, "results": results})
    print(table(rows, list(rows[0]), markdown=True))
    print(f"wrote {path}")
    if args.figure:
        figure(recognizer, args.seed)


def figure(recognizer: Recognizer, seed: int) -> None:
    """One line per font: the image given to read, and what the line model read."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed + 1)
    fig, axes = plt.subplots(len(FONTS), 1, figsize=(8, 1.5 * len(FONTS)))
    for ax, font in zip(axes, FONTS):
        text = sample_text(rng, "words")
        file = drawn(font, text, rng)
        ax.imshow(Image.open(io.BytesIO(file)), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{font}: {text!r} read as {recognizer.read(file).text!r}", fontsize=9, loc="left")
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, "read_hershey")


if __name__ == "__main__":
    main()
