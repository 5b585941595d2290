"""Synthetic lines of handwriting, composed from a corpus's single characters, whole batches at a time.

Like "EMNIST Lines" of the Full Stack Deep Learning text recogniser: a text is drawn (English words by frequency,
digit strings, both mixed), each of its characters is an image of that class from the corpus (train part for
training, test part for evaluation), scaled to its place on a line (capitals and digits full height, lowercase
x-height letters smaller, descenders below the baseline), slanted, thickened or thinned, and set beside the last
with a gap drawn from the spacing range (negative: the characters overlap and touch). The line is then brought to
the form the line model reads (`line_form`): its ink cropped top to bottom and scaled to LINE_INK rows, LINE_HEIGHT
rows in all, width in proportion.

Everything random comes from one torch.Generator: a batch is a function of (seed, batch index) alone.
"""
from __future__ import annotations

import functools
import math
import string
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .ink import ink_box

LINE_HEIGHT = 32       # rows the line model reads
LINE_INK = 28          # rows the ink spans inside it (2 rows of margin above and below)
LINE_MARGIN = 2        # blank columns before the ink (and after it)
CAP = 34               # capital height in the composing canvas, before line_form scales the line
TILE = 64              # side of the square a character is drawn into before it is placed
BASELINE = 46           # tile row of the baseline: room above for tall capitals, below for descenders
SPACE = " "            # the class the line model answers for a gap between words
STROKE = 4.5           # EMNIST's stroke width in the line form (stroke_width of the test lines: median 4.5-5.4 per
THIN_STROKE = 3.5      # cell, 10th percentile 3.8-4.5; read.json); thinner than THIN_STROKE is widened to STROKE

# Where lowercase letters sit relative to capitals (height as a share of a capital, shift down as a share).
X_HEIGHT = set("acemnorsuvwxz")
ASCENDERS = set("bdfhklt")
DESCENDERS = set("gpqy")


def letter_place(c: str) -> tuple[float, float]:
    """(height as a share of a capital's, shift below the capital baseline as a share of a capital's height)."""
    if c in X_HEIGHT:
        return 0.62, 0.0
    if c in ASCENDERS:
        return 1.0, 0.0
    if c in DESCENDERS:
        return 0.95, 0.33
    if c == "i":
        return 0.85, 0.0
    if c == "j":
        return 1.1, 0.33
    return 1.0, 0.0


# ------------------------------------------------------------------------------------------------- texts
LINE_WORDS = 30_000    # the lines' words: the most frequent of wordfreq's English list


@functools.lru_cache(maxsize=2)
def english_words(n: int) -> tuple[list[str], np.ndarray]:
    """The n most frequent ASCII English words (wordfreq) and their frequencies: the text of synthetic lines, and
    read's default lexicon (recognition/decode.py)."""
    from wordfreq import top_n_list, word_frequency
    words = [w for w in top_n_list("en", n) if w.isascii() and w.isalpha()]
    return words, np.array([word_frequency(w, "en") for w in words])


@functools.lru_cache(maxsize=1)
def word_cdf() -> tuple[list[str], np.ndarray]:
    """The lines' words and the cumulative distribution they are drawn by: frequencies tempered (^0.3), so
    common words come often but the long tail too."""
    words, frequency = english_words(LINE_WORDS)
    p = frequency ** 0.3
    return words, np.cumsum(p / p.sum())


@dataclass(frozen=True)
class TextMix:
    """What the lines say: shares of word lines, digit lines and mixed lines (the rest)."""
    words: float = 0.5
    digits: float = 0.3
    max_words: int = 3         # word lines hold 1..max_words words
    max_digits: int = 12       # digit strings: 1..max_digits digits in all


def case_of(word: str, rng: np.random.Generator) -> str:
    r = rng.random()
    return word.upper() if r < 0.3 else word.capitalize() if r < 0.5 else word


def sample_word(rng: np.random.Generator) -> str:
    words, cdf = word_cdf()
    return words[min(int(np.searchsorted(cdf, rng.random())), len(words) - 1)]


def digit_string(rng: np.random.Generator, max_digits: int) -> str:
    kind = rng.integers(4)
    if kind == 0:  # a number
        return str(rng.integers(0, 10 ** rng.integers(1, min(max_digits, 9) + 1)))
    if kind == 1:  # a date as people write it without punctuation
        d, m, y = rng.integers(1, 29), rng.integers(1, 13), rng.integers(1950, 2040)
        return [f"{d:02d} {m:02d} {y}", f"{y} {m:02d} {d:02d}", f"{d}{m:02d}{y % 100:02d}"][rng.integers(3)]
    if kind == 2:  # phone-like groups
        groups = rng.integers(2, 4)
        return " ".join("".join(map(str, rng.integers(0, 10, rng.integers(2, 5)))) for _ in range(groups))
    return "".join(map(str, rng.integers(0, 10, rng.integers(4, max_digits + 1))))  # an ID


def sample_text(rng: np.random.Generator, kind: str, mix: TextMix = TextMix()) -> str:
    """One line's text of a kind: "words", "digits" or "mixed"."""
    if kind == "words":
        return " ".join(case_of(sample_word(rng), rng) for _ in range(rng.integers(1, mix.max_words + 1)))
    if kind == "digits":
        return digit_string(rng, mix.max_digits)
    parts = [case_of(sample_word(rng), rng), digit_string(rng, 6)]
    if rng.random() < 0.3:  # an ID such as AB1234
        parts = ["".join(string.ascii_uppercase[k] for k in rng.integers(0, 26, rng.integers(1, 4))) + parts[1]]
    rng.shuffle(parts)
    return " ".join(parts)


def fitting(text: str, classes: list[str], rng: np.random.Generator) -> str:
    """The text if the classes can say it, else a string as long of characters they can (a corpus of digits
    alone, or of a few letters, still makes lines)."""
    if None not in classes_of(text.replace(SPACE, ""), classes):
        return text
    own = [c for c in classes if c != SPACE]
    return "".join(SPACE if c == SPACE else own[rng.integers(len(own))] for c in text)


def sample_kind(rng: np.random.Generator, mix: TextMix = TextMix()) -> str:
    r = rng.random()
    return "words" if r < mix.words else "digits" if r < mix.words + mix.digits else "mixed"


# ------------------------------------------------------------------------------------------------- classes
def classes_of(text: str, classes: list[str]) -> list[int | None]:
    """The class that answers for each character: its own, else the merged class of its other case (ByMerge's C
    stands for c and C); None for a character neither case of which is a class."""
    index = class_index(tuple(classes))
    return [index[c] if c in index else index.get(c.swapcase()) for c in text]


@functools.lru_cache(maxsize=8)
def class_index(classes: tuple[str, ...]) -> dict[str, int]:
    return {k: i for i, k in enumerate(classes)}


# ------------------------------------------------------------------------------------------------- composing
@dataclass(frozen=True)
class Spacing:
    """Gaps between neighbouring characters of a word, as a share of the mean character width (negative:
    overlap); gaps between words are wider."""
    low: float = -0.3
    high: float = 0.5
    word_gap: tuple[float, float] = (0.8, 1.6)


GAP_SPREAD = 0.15      # a writer keeps their spacing: a line's character gaps lie within this (character widths)
                       # of the line's own, which is drawn from the spacing range


def character_gaps(spacing: Spacing, owner: torch.Tensor, lines: int, generator: torch.Generator) -> torch.Tensor:
    """The gap before each character (owner: its line), in mean character widths: a spacing of the line's own from
    the spacing range, each gap within GAP_SPREAD of it, all inside the range. Were each gap drawn on its own, a
    line of uniformly wide gaps, as a writer who spaces widely writes, would almost never come in training, and
    the line model reads spaces into such lines' widest character gaps."""
    own = torch.empty(lines).uniform_(spacing.low, spacing.high, generator=generator)
    jitter = torch.empty(len(owner)).uniform_(-GAP_SPREAD, GAP_SPREAD, generator=generator)
    return (own[owner] + jitter).clamp(spacing.low, spacing.high)


SPACINGS = {  # the benchmark's three (issue 18): spaced, tight, touching
    "spaced": Spacing(0.3, 0.5), "tight": Spacing(0.0, 0.1), "touching": Spacing(-0.3, 0.0),
}


class CharacterBank:
    """A corpus part's character images grouped by class, with each image's ink box, for drawing by class."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str]):
        self.images = images  # uint8 N×28×28, EMNIST form (white on black, upright)
        self.classes = list(classes)
        labels = labels.numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        self.by_class = [np.flatnonzero(labels == k) for k in range(len(self.classes))]
        ink = self.images > 40
        rows, cols = ink.any(dim=2), ink.any(dim=1)
        first = lambda m: m.float().argmax(dim=1)  # noqa: E731
        last = lambda m: m.shape[1] - 1 - m.flip(1).float().argmax(dim=1)  # noqa: E731
        self.boxes = torch.stack([first(cols), first(rows), last(cols) + 1, last(rows) + 1], dim=1).float()

    def draw(self, k: int, rng: np.random.Generator) -> int:
        pool = self.by_class[k]
        if len(pool) == 0:
            raise ValueError(f"no images of class {self.classes[k]!r} in this corpus part")
        return int(pool[rng.integers(len(pool))])


def render_characters(bank: CharacterBank, picks: torch.Tensor, heights: torch.Tensor, slant: torch.Tensor,
                      shift: torch.Tensor) -> torch.Tensor:
    """Each picked image's ink box scaled to its height (canvas pixels), slanted (shear, radians), placed with its
    bottom at BASELINE + shift in a TILE×TILE tile: float n×1×TILE×TILE in [0, 1]."""
    n = len(picks)
    box = bank.boxes[picks]
    glyph_h = (box[:, 3] - box[:, 1]).clamp(min=1)
    cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
    zoom = heights / glyph_h                         # canvas pixels per source pixel
    # tile pixel (u, v) -> source pixel: x = cx + (u - TILE/2 + tan(slant)(v - v_c)) / zoom, y = cy + (v - v_c)/zoom
    v_c = BASELINE + shift - heights / 2           # where the glyph's centre goes in the tile
    theta = torch.zeros(n, 2, 3)
    # affine_grid works in [-1, 1] coordinates of both output (tile) and input (28×28)
    s = TILE / 28.0 / zoom
    theta[:, 0, 0] = s
    theta[:, 0, 1] = -s * torch.tan(slant)
    theta[:, 1, 1] = s
    # centre terms: tile centre (TILE/2) maps to source (cx + tan(slant)(v_c - TILE/2)/zoom ... ) in pixels
    src_x = cx + torch.tan(slant) * (v_c - TILE / 2) / zoom
    src_y = cy - (v_c - TILE / 2) / zoom
    theta[:, 0, 2] = src_x / 14.0 - 1
    theta[:, 1, 2] = src_y / 14.0 - 1
    src = bank.images[picks].float().div_(255).unsqueeze(1)
    grid = F.affine_grid(theta, [n, 1, TILE, TILE], align_corners=False)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def stroke_change(tiles: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A third of the characters thicker (3×3 max), a fifth thinner (3×3 min), the rest as drawn."""
    r = torch.rand(len(tiles), generator=generator)
    thick, thin = r < 1 / 3, r > 0.8
    tiles = tiles.clone()
    tiles[thick] = F.max_pool2d(tiles[thick], 3, 1, 1)
    tiles[thin] = -F.max_pool2d(-tiles[thin], 3, 1, 1)
    return tiles


def stroke_profile(lines: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """EMNIST's strokes are soft (scanned, blurred, resampled), a pen on a tablet or a clean scan gives hard-edged
    ones: a third of the lines are made crisp (a steep ramp around a threshold), a third softer (a Gaussian blur),
    so that the line model reads both."""
    n = len(lines)
    r = torch.rand(n, generator=generator)
    out = lines.clone()
    crisp = r < 1 / 3
    if crisp.any():
        threshold = 0.15 + 0.25 * torch.rand(int(crisp.sum()), 1, 1, 1, generator=generator)
        out[crisp] = ((lines[crisp] - threshold) * 6 + 0.5).clamp(0, 1)
    soft = r > 2 / 3
    if soft.any():
        sigma = 0.5 + 0.5 * float(torch.rand(1, generator=generator))
        k = torch.arange(-2, 3, dtype=torch.float32)
        k = torch.exp(-k ** 2 / (2 * sigma ** 2))
        kernel = (k[:, None] * k[None, :] / k.sum() ** 2).view(1, 1, 5, 5)
        blurred = F.conv2d(lines[soft], kernel, padding=2)
        out[soft] = blurred / blurred.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    return out


@dataclass
class LineBatch:
    images: torch.Tensor        # float N×1×LINE_HEIGHT×W in [0, 1], ink light on 0
    widths: torch.Tensor        # each line's width in pixels (the rest of W is padding)
    texts: list[str]
    targets: list[list[int]]    # class indices per line (CTC targets)


def compose(bank: CharacterBank, texts: list[str], spacing: Spacing, generator: torch.Generator,
            rng: np.random.Generator, profiles: bool = False) -> LineBatch:
    """Lines saying `texts`, drawn from the bank's characters, in the line model's form."""
    classes = bank.classes
    space = classes.index(SPACE) if SPACE in classes else None
    picks, heights, shifts, owner = [], [], [], []
    targets = []
    for i, text in enumerate(texts):
        cap = CAP * float(np.exp(rng.normal(0, 0.08)))  # the writer's size
        target = []
        for c, k in zip(text, classes_of(text, classes)):
            if c == SPACE:
                if space is not None:
                    target.append(space)
                continue
            target.append(k)
            h, down = letter_place(c)
            picks.append(bank.draw(k, rng))
            heights.append(cap * h * float(np.exp(rng.normal(0, 0.07))))
            shifts.append(cap * (down + rng.normal(0, 0.04)))  # baseline wobble
            owner.append(i)
        targets.append(target)
    n = len(picks)
    slant_line = torch.randn(len(texts), generator=generator) * math.radians(8)
    owner_t = torch.tensor(owner)
    slant = slant_line[owner_t] + torch.randn(n, generator=generator) * math.radians(3)
    tiles = render_characters(bank, torch.tensor(picks), torch.tensor(heights, dtype=torch.float32), slant,
                              torch.tensor(shifts, dtype=torch.float32))
    tiles = stroke_change(tiles, generator)
    cols = (tiles[:, 0] > 0.15).any(dim=1)  # n×TILE: which tile columns hold ink
    left = cols.float().argmax(dim=1)
    right = TILE - cols.flip(1).float().argmax(dim=1)
    widths = (right - left).clamp(min=1).float()

    # x positions, line by line: each character's ink starts `gap` after the previous one's ends
    gaps = character_gaps(spacing, owner_t, len(texts), generator)
    word_gaps = torch.empty(n).uniform_(*spacing.word_gap, generator=generator)
    lines_x: list[list[int]] = []
    j = 0
    for i, text in enumerate(texts):
        count = sum(1 for c in text if c != SPACE)
        mean_w = float(widths[j:j + count].mean()) if count else 1.0
        x, xs, after_space = float(TILE), [], False
        for c in text:
            if c == SPACE:
                after_space = True
                continue
            if xs:
                x += float((word_gaps[j] if after_space else gaps[j]) * mean_w)
            xs.append(round(x - float(left[j])))
            x = xs[-1] + float(right[j])
            after_space = False
            j += 1
        lines_x.append(xs)
    total = max((xs[-1] + TILE if xs else TILE) for xs in lines_x) + 8
    canvas = torch.zeros(len(texts), 1, TILE + int(CAP * 0.6), total)
    j = 0
    for i, xs in enumerate(lines_x):
        for x in xs:
            region = canvas[i, :, :TILE, x:x + TILE]
            torch.maximum(region, tiles[j, :, :, :region.shape[-1]], out=region)
            j += 1
    images, widths = line_form_batch(canvas)
    return LineBatch(stroke_profile(images, generator) if profiles else images, widths, texts, targets)


def line_form_batch(canvas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lines (N×1×H×W, ink > 0) to the line model's form: each line's ink rows scaled to LINE_INK, width in
    proportion; (N×1×LINE_HEIGHT×W' padded with 0, each line's width). The same as line_form, batched."""
    n, _, h, w = canvas.shape
    ink = canvas[:, 0] > 0.15
    rows, cols = ink.any(dim=2), ink.any(dim=1)
    top = rows.float().argmax(dim=1)
    bottom = h - rows.flip(1).float().argmax(dim=1)
    lefts = cols.float().argmax(dim=1)
    rights = w - cols.flip(1).float().argmax(dim=1)
    zoom = LINE_INK / (bottom - top).clamp(min=1).float()              # output pixels per canvas pixel
    out_w = torch.ceil((rights - lefts).float() * zoom).long() + 4
    width = int(out_w.max())
    # output pixel (u, v) -> canvas pixel: x = left + (u - 2) / zoom, y = top + (v - 2) / zoom
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = (width / w) / zoom
    theta[:, 1, 1] = (LINE_HEIGHT / h) / zoom
    # centres: output centre u = width/2 -> x = left + (width/2 - 2)/zoom, in [-1, 1] of the canvas: x*2/w - 1
    theta[:, 0, 2] = (lefts.float() + (width / 2 - 2) / zoom) * 2 / w - 1
    theta[:, 1, 2] = (top.float() + (LINE_HEIGHT / 2 - 2) / zoom) * 2 / h - 1
    grid = F.affine_grid(theta, [n, 1, LINE_HEIGHT, width], align_corners=False)
    # area-like reduction: a line is shrunk ~1.5x, so blur a little first to keep thin strokes
    smooth = F.avg_pool2d(canvas, 3, 1, 1)
    out = F.grid_sample(smooth, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out / out.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    columns = torch.arange(width).view(1, 1, 1, width)
    out = out.masked_fill(columns >= out_w.view(n, 1, 1, 1), 0.0)
    return out, out_w


def line_form(ink: np.ndarray) -> np.ndarray:
    """One line's ink map (float, light on 0, any size) -> float32 LINE_HEIGHT×W in [0, 1] (line_form_batch's
    form: ink rows scaled to LINE_INK, 2 rows margin, 2 columns margin)."""
    from PIL import Image
    x0, y0, x1, y1 = ink_box(ink > 0)
    crop = ink[y0:y1, x0:x1].astype(np.float32)
    zoom = LINE_INK / crop.shape[0]
    w = max(1, round(crop.shape[1] * zoom))
    scaled = np.asarray(Image.fromarray(crop).resize((w, LINE_INK), Image.Resampling.BOX), dtype=np.float32)
    out = np.zeros((LINE_HEIGHT, w + 2 * LINE_MARGIN), np.float32)
    out[2:2 + LINE_INK, LINE_MARGIN:LINE_MARGIN + w] = np.clip(scaled, 0, None)
    peak = out.max()
    return out / peak if peak > 0 else out


def stroke_width(form: np.ndarray) -> float:
    """The strokes' mean width in pixels: 2 × ink area / ink outline (a stroke of length L and width w has area
    L·w and an outline of about 2L)."""
    from scipy.ndimage import binary_erosion
    ink = form > 0.3
    outline = np.count_nonzero(ink & ~binary_erosion(ink))
    return 2 * np.count_nonzero(ink) / max(outline, 1)


def line_form_of_writing(ink: np.ndarray) -> np.ndarray:
    """line_form of one line of writing as people write it: strokes thinner than EMNIST's ever are (a fine pen,
    a stroke font, a large scan), which the line model reads far worse, are first widened in the ink map itself
    (before it is scaled down, so that their shapes stay) to EMNIST's width in the form."""
    from scipy.ndimage import maximum_filter
    form = line_form(ink)
    width = stroke_width(form)
    if width >= THIN_STROKE:
        return form
    _, top, _, bottom = ink_box(ink > 0)
    zoom = LINE_INK / (bottom - top)  # form pixels per ink-map pixel
    return line_form(maximum_filter(ink, size=int(round((STROKE - width) / zoom)) + 1))


def batch_of_lines(bank: CharacterBank, size: int, seed: int, index: int, spacing: Spacing = Spacing(),
                   kinds: tuple[str, ...] | None = None, mix: TextMix = TextMix(), training: bool = False
                   ) -> LineBatch:
    """Batch `index` of a seed's stream: `size` lines of random kinds (or the given kinds, cycled). `training`:
    lines of similar lengths (less padding to compute), with varied stroke profiles (stroke_profile)."""
    rng = np.random.default_rng([seed, index])
    generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
    texts = [fitting(sample_text(rng, kinds[i % len(kinds)] if kinds else sample_kind(rng, mix), mix),
                     bank.classes, rng) for i in range(size * (1 if kinds or not training else 3))]
    if len(texts) > size:  # a window of similar lengths out of three batches' texts: less padding to compute
        texts.sort(key=len)
        start = int(rng.integers(len(texts) - size + 1))
        texts = texts[start:start + size]
        rng.shuffle(texts)
    return compose(bank, texts, spacing, generator, rng, profiles=training)
