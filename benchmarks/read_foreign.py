"""Reading writing that is not EMNIST, by `read`: words and digit strings in Hershey stroke fonts, and digit strings
of the UCI pen digits.

read.py measures lines composed from EMNIST characters, the material the line model was trained on (other
writers, but the same scans, the same strokes). Here the writing comes from elsewhere.

The Hershey fonts (the PyPI package Hershey-Fonts): vector strokes drawn with a round pen as a tablet or a canvas
would, in three hands:
`futural` (plain print, the closest to neat handwriting), `timesi` (italic, with serifs) and `scripts` (joined
cursive: every letter of a word touches the next, what EMNIST never shows). Each line gets its own pen width
(3-6% of the line's height), slant (±8°), rotation (±2°) and size; the font sets the spacing. The texts are drawn
as read.py's are (English words by frequency in lowercase, Capitalised or UPPERCASE; digit strings), from another
seed. Nothing here was used to train anything. `read` widens strokes thinner than EMNIST's before reading
(data/lines.py line_form_of_writing); the last column reads without that, and the way of widening was chosen on
another seed (--seed 7 --n 80), not on this one.

The UCI pen digits (scikit-learn's load_digits: 1,797 digits by 43 people, not NIST's writers), as the set has
them: 8×8 blocks of 16 grey levels, drawn 6x as large (48 rows, soft and coarse, as a small digit in a low-resolution
photo is), set side by side with gaps of 0.1-0.5 digit widths (0.8-1.6 between groups).

It is a check of how far the EMNIST-trained models carry; nothing here was used to train anything.

    python benchmarks/read_foreign.py             # 150 lines per source and kind -> results/read_foreign.json
    python benchmarks/read_foreign.py --figure    # and docs/read_foreign.png
    python benchmarks/read_foreign.py --seed 7 --n 80   # where how to widen was chosen -> read_foreign_seed_7.json
    python benchmarks/read_foreign.py --line-model DIR  # another line model, the same lines -> read_foreign_DIR.json
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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_figure, table, write_results  # noqa: E402
from read import read_all, stroke_widths  # noqa: E402

from emnist_cnn.data.fonts import HEIGHT, draw, strokes  # noqa: E402
from emnist_cnn.data.lines import line_form, sample_text  # noqa: E402
from emnist_cnn.evaluation.lines import score  # noqa: E402
from emnist_cnn.recognition import Recognizer  # noqa: E402
from emnist_cnn.recognition import lines as reading_lines  # noqa: E402

FONTS = ("futural", "timesi", "scripts")
UCI = "uci digits"    # the source of UCI's pen digits, beside the fonts
UCI_SCALE = 6         # 8×8 -> 48×48
KINDS = {"words": "letters", "digits": "digits"}  # kind of text -> the charset that is right for it
AS_DRAWN = "lines + context + charset, strokes not widened"
SEED = 2026


def drawn(font: str, text: str, rng: np.random.Generator) -> bytes:
    """A PNG of the text written in the font: dark ink on white, with this line's pen, slant, rotation and size."""
    size = float(np.exp(rng.normal(0, 0.15)))
    slant, turn = math.radians(rng.uniform(-8, 8)), math.radians(rng.uniform(-2, 2))
    shear = np.array([[1, -math.tan(slant)], [0, 1]])
    rotate = np.array([[math.cos(turn), -math.sin(turn)], [math.sin(turn), math.cos(turn)]])
    lines = [p @ (rotate @ shear).T * size for p in strokes(text, font, HEIGHT)]
    pen = max(2, round(HEIGHT * size * rng.uniform(0.03, 0.06)))
    buf = io.BytesIO()
    draw(lines, pen, ink=30, margin=30 + pen).save(buf, "PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def uci_digits() -> tuple[np.ndarray, list[np.ndarray]]:
    from sklearn.datasets import load_digits
    digits = load_digits()
    return digits.images / 16.0, [np.flatnonzero(digits.target == k) for k in range(10)]


def uci_line(text: str, rng: np.random.Generator) -> bytes:
    """A PNG of the digit string in UCI pen digits (a random writer's image per digit), dark on white."""
    images, by_digit = uci_digits()
    glyphs = []
    for c in text:
        if c == " ":
            glyphs.append(None)
            continue
        image = images[by_digit[int(c)][rng.integers(len(by_digit[int(c)]))]]
        cols = np.flatnonzero(image.max(axis=0) > 0.2)
        image = (image[:, cols[0]:cols[-1] + 1] * 255).astype(np.uint8)
        glyphs.append(np.asarray(Image.fromarray(image).resize(
            (image.shape[1] * UCI_SCALE, 8 * UCI_SCALE), Image.Resampling.BICUBIC)))
    width = np.mean([g.shape[1] for g in glyphs if g is not None])
    parts, after_space = [], False
    for g in glyphs:
        if g is None:
            after_space = True
            continue
        if parts:
            gap = rng.uniform(0.8, 1.6) if after_space else rng.uniform(0.1, 0.5)
            parts.append(np.zeros((8 * UCI_SCALE, int(round(width * gap))), np.uint8))
        parts.append(g)
        after_space = False
    paper = np.full((8 * UCI_SCALE + 60, sum(p.shape[1] for p in parts) + 60), 255, np.uint8)
    paper[30:-30, 30:-30] = 255 - np.concatenate(parts, axis=1)
    buf = io.BytesIO()
    Image.fromarray(paper).save(buf, "PNG")
    return buf.getvalue()


def single_digits(seed: int, per_digit: int = 20) -> list[dict]:
    """Each font's digits alone, through `predict`: the shipped default (bymerge47, charset digits) and the digits
    model. Are a line model's digit errors the line model's, or its training writers'?"""
    out = []
    for model, charset in (("emnist-cnn/bymerge47", "digits"), ("emnist-cnn/digits", None)):
        recognizer = Recognizer.load(model, lines=None)
        for f, font in enumerate(FONTS):
            rng = np.random.default_rng([seed, 100 + f])
            truths = [d for d in "0123456789" for _ in range(per_digit)]
            said = [recognizer.predict(drawn(font, d, rng), top_k=1, charset=charset)[0][0] for d in truths]
            right = float(np.mean([a == b for a, b in zip(said, truths)]))
            out.append({"font": font, "model": model, "accuracy": right, "ones": per_digit,
                        "1_as_7": sum(t == "1" and s == "7" for t, s in zip(truths, said))})
    return out


def edits(truths: list[str], reads: list[str]) -> dict:
    """The edits from truth to reading, case-insensitive: in all, those that read a 1 as 7, and the most frequent
    substitutions ("6>5": a 6 read as 5; a font writes each character alike, so one shape misread repeats)."""
    from collections import Counter

    from rapidfuzz.distance import Levenshtein
    pairs = [(t.lower(), r.lower()) for t, r in zip(truths, reads)]
    ops = [(op, t[i], r[j]) if op == "replace" else (op,) for t, r in pairs for op, i, j in Levenshtein.editops(t, r)]
    swaps = Counter(f"{op[1]}>{op[2]}" for op in ops if op[0] == "replace")
    return {"edits": len(ops), "1_as_7": swaps["1>7"], "top_substitutions": swaps.most_common(3)}


def cells() -> list[tuple[str, str]]:
    """(source, kind of text): each font's words and digits, UCI's digits."""
    return [(font, kind) for font in FONTS for kind in KINDS] + [(UCI, "digits")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=150, help="lines per source and kind of text")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--figure", action="store_true", help="also draw docs/read_foreign.png (a line per source)")
    parser.add_argument("--line-model", help="another line model (a run or model directory) instead of the shipped "
                        "one: the same lines, results -> read_foreign_<its directory's name>.json")
    args = parser.parse_args()
    recognizer = Recognizer.load(lines=args.line_model or "auto")
    readers = {"components": dict(reader="components"), "components + charset": dict(reader="components"),
               "lines, greedy": dict(reader="lines", decoder="greedy"),
               "lines + context": dict(reader="lines"), "lines + context + charset": dict(reader="lines"),
               AS_DRAWN: dict(reader="lines")}
    results, rows, widths = [], [], {}
    for source, kind in cells():
        charset = KINDS[kind]
        rng = np.random.default_rng([args.seed, (FONTS + (UCI,)).index(source), list(KINDS).index(kind)])
        truths = [sample_text(rng, kind) for _ in range(args.n)]
        files = [uci_line(t, rng) if source == UCI else drawn(source, t, rng) for t in truths]
        widths[f"{source}, {kind}"] = stroke_widths(files)
        row = {}
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
            results.append({"source": source, "kind": kind, "reader": name, **s, **edits(truths, reads),
                            "read_by": recognizer.read_by(recognizer.read_options(**options)),
                            "ms_per_line": 1000 * (time.perf_counter() - start) / len(files),
                            "examples": [[t, r] for t, r in zip(truths[:5], reads[:5])]})
            row[name] = f"{100 * s['cer']:.1f}% / {100 * s['exact']:.1f}%"
            print(f"{source} {kind} {name}: CER {s['cer']:.4f} exact {s['exact']:.3f}", flush=True)
        rows.append({"source": source, "text": kind, **row})
    singles = single_digits(args.seed)
    # the seed the README's table comes from writes read_foreign.json; another (how to widen was chosen on 7) its own
    name = "read_foreign" if args.seed == SEED else f"read_foreign_seed_{args.seed}"
    if args.line_model:
        name += f"_{Path(args.line_model).resolve().name}"
    path = write_results(name, {
        "line_model": recognizer.lines.meta.get("name", recognizer.lines.name),
        "charset_line_models": [r.name for r in recognizer.charset_lines],
        "data": "not EMNIST: Hershey stroke fonts (PyPI Hershey-Fonts) and UCI pen digits (scikit-learn "
                f"load_digits); texts as read.py's, seed {args.seed}", "lines_per_cell": args.n, "results": results,
        "single_digits": singles, "stroke_widths": widths})
    print("single digits, top-1 of predict: " + ", ".join(
        f"{r['font']} {r['model']} {r['accuracy']:.3f} (1 read as 7: {r['1_as_7']} of {r['ones']})" for r in singles))
    print(table(rows, list(rows[0]), markdown=True))
    print(f"wrote {path}")
    if args.figure:
        figure(recognizer, args.seed)


def figure(recognizer: Recognizer, seed: int) -> None:
    """A line per source: the image given to read, and what the line model read."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed + 1)
    sources = FONTS + (UCI,)
    fig, axes = plt.subplots(len(sources), 1, figsize=(8, 1.5 * len(sources)))
    for ax, source in zip(axes, sources):
        text = sample_text(rng, "digits" if source == UCI else "words")
        file = uci_line(text, rng) if source == UCI else drawn(source, text, rng)
        charset = "digits" if source == UCI else None
        ax.imshow(Image.open(io.BytesIO(file)), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{source}: {text!r} read as {recognizer.read(file, charset=charset).text!r}", fontsize=9,
                     loc="left")
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, "read_foreign")


if __name__ == "__main__":
    main()
