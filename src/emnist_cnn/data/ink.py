"""Finding the ink in a photo of paper, before the EMNIST conversion (preprocess.py) sees it.

A canvas drawing or a clean scan has flat, quiet paper, and the conversion's own global threshold is right for it:
such images are recognised as clean (a cheap look at the paper's large-scale brightness and at its grain) and
pass unchanged. A photo has light
that varies across the page (a lamp to one side, the shadow of the phone), pale printed lines, sensor noise and
page edges. For those:

1. the paper's brightness is estimated everywhere: the brightest level in small blocks (ink is darker than
   paper), closed with a filter wider than a pen stroke, smoothed and brought back to full size;
2. dividing by it turns every lighting into even paper (light is multiplicative), and the ink is what is darker
   than its own paper by a share of the strongest stroke: pale ruled or squared lines fall below it;
3. of the marks left, the ones that are not writing go: marks touching the image border that reach far into it
   (page edges, the rim of a shadow), marks spanning nearly the whole image, regions too solid to be strokes
   (what survives an opening wider than any pen stroke: a shadow's corner), and specks. Marks are judged after
   an opening that removes lines one or two pixels thin, so that a shadow's rim touching a letter is not taken
   for part of it; the letter's own thin parts are kept near what remains. Writing is one pen: a mark much
   paler than the darkest one (SAME_INK), or at the border paler at all (EDGE_INK), is light, not ink: the tip
   of a shadow where it meets the page's turned edge, which no rule of size can tell from a stroke.

numpy and scipy.ndimage do all of it in a few milliseconds for a phone photo reduced to the working size; OpenCV
or scikit-image would add a large dependency for the same three filters.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

CLEAN_RANGE = 24.0      # paper whose large-scale brightness varies less than this (of 255) is flat
CLEAN_GRAIN = 1.5       # and whose pixels vary by less than this (standard deviation) is quiet: clean, skipped
SMALL = 64              # an image with a side shorter than this is a crop of one character, not a photo: clean
SHADOW_BLOCKS = 4       # this many dark blocks of the coarse map side by side are a shadow, not ink
BACKGROUND_SIDE = 240   # the paper's brightness is estimated on a grid of about this many blocks per side: fine
                        # enough that a shadow's edge leaves no band as wide as a pen stroke (120 did)
CLOSING = 1 / 6         # dark features narrower than this share of the shorter side (pen strokes) are not paper
INK_FRACTION = 0.3      # a mark is ink if darker than its paper by this share of the strongest stroke; around
FRINGE_FRACTION = 0.15  # the marks kept, pixels down to this share count (the stroke's soft edge, as for scans)
SOLID = 1 / 5           # dark regions wider than this share of the shorter side everywhere are not strokes
                        # (a shadow's corner, a dark wedge beside the page): they are cut out of the ink
BORDER_MARGIN = 0.02    # a mark this near the border (a share of the shorter side) touches it: a page edge
                        # turned by the camera, or cut by the estimate of the paper, stops short of the border
BORDER_REACH = 0.35     # a mark touching the border and reaching this share into the image is not writing,
BORDER_SHARE = 0.25     # nor is one touching it with less ink than this share of the largest mark (a fragment),
BORDER_EXTENT = 0.15    # or smaller than this share of the image's shorter side (where a shadow's rim meets it)
SAME_INK = 0.7          # a mark whose darkest point is less dark than this share of the darkest mark's is not
                        # of the same pen: the tip of a shadow where it meets a page edge, lit differently;
EDGE_INK = 0.9          # and a mark touching the border, not the largest, must reach this share
MIN_INK = 80.0          # a mark whose darkest point is less dark than this (of 255) is print or grain, not ink
SPAN = 0.9              # a mark spanning this share of the image's width or height is not writing
SPECK = 0.02            # a mark with less ink than this share of the largest one is noise,
MIN_EXTENT = 0.05       # and so is one smaller than this share of the image's shorter side (a shadow's fleck)


def ink_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box (x0, y0, x1, y1), ends exclusive, of a mask's true (or nonzero) pixels; None where there are none."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def block_max(gray: np.ndarray, factor: int) -> np.ndarray:
    """The brightest value of each factor×factor block; where the side is not a multiple of factor, the last
    block is the last factor rows (columns), overlapping the one before (no padded copy: ~5x faster)."""
    h, w = gray.shape
    rows, cols = math.ceil(h / factor), math.ceil(w / factor)
    if h % factor and h > factor:
        gray = np.concatenate([gray[:h - h % factor], gray[h - factor:]], axis=0)
    if w % factor and w > factor:
        gray = np.concatenate([gray[:, :w - w % factor], gray[:, w - factor:]], axis=1)
    fh, fw = min(factor, gray.shape[0]), min(factor, gray.shape[1])
    return gray.reshape(rows, fh, cols * fw).max(axis=1).reshape(rows, cols, fw).max(axis=2)


def paper_levels(gray: np.ndarray, side: int = 12) -> np.ndarray:
    """A coarse map of the paper's brightness (dark ink on light paper): the brightest level per block, of every
    second pixel (a quarter of the work; a block holds paper pixels on that grid unless ink covers it)."""
    half = gray[::2, ::2]
    return block_max(half, max(1, math.ceil(max(half.shape) / side)))


def is_clean(gray: np.ndarray) -> bool:
    """Flat, quiet paper (a canvas drawing, a clean scan). A photo has grain (sensor noise, paper texture), so the
    pixels near the paper's level must vary by less than CLEAN_GRAIN; and on a coarse map of the paper's brightness
    no region may be darker than the paper by CLEAN_RANGE: not a quarter of the map (a lighting gradient), nor
    SHADOW_BLOCKS blocks side by side (a shadow; ink darkens a block only where a stroke is wider than it, and
    rarely several in a row). Every canvas drawing pays for this check: a sample, partial sorts, and the shadow
    search only where some block is dark."""
    if min(gray.shape) < SMALL:
        return True
    sample = gray[::4, ::4].ravel()
    k = int(0.9 * (sample.size - 1))
    bright = float(np.partition(sample, k)[k])
    paper = sample[sample >= bright - 12].astype(np.float32)
    if paper.size and float(paper.std()) >= CLEAN_GRAIN:
        return False
    levels = paper_levels(gray)
    flat = levels.ravel()
    k = int(0.95 * (flat.size - 1))
    dark = levels < float(np.partition(flat, k)[k]) - CLEAN_RANGE
    if not dark.any():
        return True
    if dark.mean() > 0.25:
        return False
    from scipy import ndimage
    groups, n = ndimage.label(dark)
    return int(np.bincount(groups.ravel())[1:].max()) < SHADOW_BLOCKS


def paper_background(gray: np.ndarray) -> np.ndarray:
    """The paper's brightness at every pixel (gray: dark ink on light paper, float32)."""
    from scipy import ndimage
    factor = max(1, math.ceil(max(gray.shape) / BACKGROUND_SIDE))
    small = block_max(gray, factor)
    size = max(3, round(CLOSING * min(gray.shape) / factor))
    # a closing (max then min filter, each separable): no smoothing after it, which would blur a shadow's edge
    small = ndimage.minimum_filter(ndimage.maximum_filter(small, size, mode="nearest"), size, mode="nearest")
    full = Image.fromarray(small.astype(np.float32), "F").resize(
        (small.shape[1] * factor, small.shape[0] * factor), Image.Resampling.BILINEAR)
    return np.asarray(full, dtype=np.float32)[:gray.shape[0], :gray.shape[1]]


def photo_ink(gray: np.ndarray) -> np.ndarray:
    """Ink intensity 0-255 on a 0 background (light on dark, as EMNIST) of a photo of dark ink on light paper;
    everything that is not writing is 0."""
    from scipy import ndimage
    gray = gray.astype(np.float32)
    background = np.maximum(paper_background(gray), 1.0)
    ink = np.clip(1.0 - gray / background, 0.0, 1.0) * 255.0
    flat = ink.ravel()
    peak = float(np.partition(flat, flat.size - 1 - flat.size // 1000)[flat.size - 1 - flat.size // 1000])
    if peak <= 0:
        return np.zeros_like(ink)
    mask = (ink >= INK_FRACTION * peak).astype(np.uint8)
    wide = max(5, round(SOLID * min(ink.shape)))
    blobs = ndimage.maximum_filter(ndimage.minimum_filter(mask, wide), wide + 4)  # solid regions, and a margin
    mask &= blobs == 0
    solid = ndimage.maximum_filter(ndimage.minimum_filter(mask, 3), 3)  # opened: without 1-2 px thin lines
    labels, n = ndimage.label(solid, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return np.zeros_like(ink)
    h, w = ink.shape
    boxes = ndimage.find_objects(labels)
    amounts = ndimage.sum_labels(ink, labels, index=np.arange(1, n + 1))
    largest = amounts.max()
    keep, reaching = np.zeros(n + 1, dtype=bool), np.zeros(n + 1, dtype=bool)
    margin = max(1, round(BORDER_MARGIN * min(h, w)))
    darkest, touching = np.zeros(n + 1), np.zeros(n + 1, dtype=bool)
    for k, (rows, cols) in enumerate(boxes, start=1):
        height, width = rows.stop - rows.start, cols.stop - cols.start
        touching[k] = min(rows.start, cols.start, h - rows.stop, w - cols.stop) < margin
        fragment = touching[k] and (amounts[k - 1] < BORDER_SHARE * largest
                                or max(height, width) < BORDER_EXTENT * min(h, w))
        if fragment or amounts[k - 1] < SPECK * largest or max(height, width) < MIN_EXTENT * min(h, w):
            continue
        darkest[k] = ink[rows, cols][labels[rows, cols] == k].max()
        keep[k] = darkest[k] >= MIN_INK
        reaching[k] = touching[k] and (height >= BORDER_REACH * h or width >= BORDER_REACH * w) or \
            height >= SPAN * h or width >= SPAN * w
    if keep.any():  # one pen: writing is about as dark as its darkest mark, a shadow's tip or a page's rim paler
        darkest_mark = darkest[keep].max()
        keep &= darkest >= SAME_INK * darkest_mark
        # at the border a mark must be darker still: there, paler than the writing is a page edge or a shadow
        # cut by the frame, while writing cut by the frame is as dark as the rest of it
        keep &= ~(touching & (darkest < EDGE_INK * darkest_mark) & (np.concatenate([[0], amounts]) < largest))
    if (keep & ~reaching).any():  # writing away from the border: what reaches in from it is an edge or a shadow
        keep &= ~reaching  # (where nothing else is left, the writing itself fills a tight crop: it is kept)
    near = ndimage.maximum_filter(keep[labels].astype(np.uint8), 5)  # the kept marks' thin parts and soft edges
    return np.where((ink >= FRINGE_FRACTION * peak) & (near > 0) & (blobs == 0), ink, 0.0).astype(np.float32)
