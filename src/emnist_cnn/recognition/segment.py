"""Split a line of separated handwritten characters into one ink map per character, left to right.

Connected components of the ink, then the parts of one character are merged: pieces stacked above each other
(the dot of an i or j, a broken stroke, the bar of a T drawn apart) overlap in x by at least half of the
narrower one's width. Specks much smaller than the largest mark are dropped as noise.

The work is bounded whatever the image: merging is a sweep over the parts sorted by x (O(n log n) per pass, passes
until nothing merges), an image with more marks than a line of handwriting has is refused before any of it, and a
deadline, when given, is checked as the work goes.
"""
from __future__ import annotations

import time

import numpy as np

from ..data.ink import ink_box
from ..errors import ImageError

SPECK_FRACTION = 0.02   # a component with less ink area than this share of the largest one is noise
X_OVERLAP = 0.5         # stacked parts: x-overlap ≥ this share of the narrower width
TALL = 0.7              # a mark at least this share of the tallest one's height is as tall as a character
STRAY_GAP = 0.15        # a mark apart from the character by more than this share of its height,
STRAY_SHARE = 0.5       # with less ink than this share of the character's and not as tall, is a stray mark
MAX_MARKS = 300         # more separate marks than this is not a line of handwriting (a dot grid, noise): refused


class TooManyMarks(ImageError):
    """An image with more separate marks than a line of handwriting has."""


class OverBudget(ImageError):
    """Reading an image took longer than its time budget."""


def check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise OverBudget("reading this image took longer than its time budget")


def components(ink: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]], np.ndarray]:
    """(label image, box (x0, y0, x1, y1) of each label 1..n, area of each)."""
    from scipy import ndimage
    mask = ink > 0
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n == 1:  # one mark (a canvas drawing, mostly): its box and area without a pass over the labels
        return labels, [ink_box(mask)], np.array([np.count_nonzero(mask)])
    boxes = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)]
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return labels, boxes, areas


def overlaps(a, b) -> bool:
    narrower = min(a[2] - a[0], b[2] - b[0])
    return min(a[2], b[2]) - max(a[0], b[0]) >= X_OVERLAP * narrower


def union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def group_parts(boxes: list, areas: np.ndarray, deadline: float | None = None
                ) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """(box, labels) per character, sorted left to right."""
    big = [i for i, a in enumerate(areas) if a >= SPECK_FRACTION * areas.max()]
    if len(big) > MAX_MARKS:
        raise TooManyMarks(f"{len(big)} separate marks, more than the {MAX_MARKS} a line of handwriting can have "
                           f"(a pattern or noise, not writing)")
    groups = [(boxes[i], [i + 1]) for i in big]
    while True:  # one sweep left to right; a union can reach parts a sweep has passed, so sweep until none merges
        check_deadline(deadline)
        swept: list = []  # sorted by x0: a part merges into a group left of it, which keeps its x0
        widest, merged = 0, False
        for box, labels in sorted(groups, key=lambda g: (g[0][0], g[0][1])):
            into = None
            for k in range(len(swept) - 1, -1, -1):
                if swept[k][0][0] < box[0] - widest:
                    break  # groups further left end before this part begins
                if overlaps(swept[k][0], box):
                    into = k
                    break
            if into is None:
                swept.append((box, labels))
                widest = max(widest, box[2] - box[0])
            else:
                swept[into] = (union(swept[into][0], box), swept[into][1] + labels)
                widest, merged = max(widest, swept[into][0][2] - swept[into][0][0]), True
        groups = swept
        if not merged:
            break
    return sorted(groups, key=lambda g: (g[0][0], g[0][1]))


def segment(ink: np.ndarray, deadline: float | None = None
            ) -> tuple[list[tuple[int, int, int, int]], list[np.ndarray]]:
    """Boxes (x0, y0, x1, y1; x1, y1 exclusive) and the ink of each character alone, left to right."""
    labels, boxes, areas = components(ink)
    out_boxes, inks = [], []
    for (x0, y0, x1, y1), parts in group_parts(boxes, areas, deadline):
        window = labels[y0:y1, x0:x1]
        inks.append(np.where(np.isin(window, parts), ink[y0:y1, x0:x1], 0).astype(np.float32))
        out_boxes.append((int(x0), int(y0), int(x1), int(y1)))
    return out_boxes, inks


def main_character(ink: np.ndarray, deadline: float | None = None
                   ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """An image of one character without its stray marks, and the boxes of the groups of parts kept: the group
    with the most ink, and every other group that stands near it, holds a good share of its ink or is as tall as
    it (a second character, which the caller must then refuse). What is left out is small and apart: a speck of
    dirt, the tip of a shadow, a piece of a ruled line."""
    labels, boxes, areas = components(ink)
    groups = group_parts(boxes, areas, deadline)
    found = [tuple(int(v) for v in box) for box, _ in groups]
    if len(groups) < 2:
        return ink, found
    group_of = np.zeros(len(boxes) + 1, dtype=np.int64)  # label -> 1 + its group (0: background, specks)
    for g, (_, parts) in enumerate(groups, start=1):
        group_of[parts] = g
    amounts = np.bincount(group_of[labels].ravel(), weights=ink.ravel(), minlength=len(groups) + 1)[1:]
    main = int(np.argmax(amounts))
    x0, y0, x1, y1 = found[main]
    height = y1 - y0
    kept = np.zeros(len(groups) + 1, dtype=bool)
    kept[0] = True  # specks stay as they were: the conversion of a clean image does not change
    for g, (bx0, by0, bx1, by1) in enumerate(found, start=1):
        gap = max(bx0 - x1, x0 - bx1, by0 - y1, y0 - by1, 0)
        kept[g] = gap <= STRAY_GAP * height or amounts[g - 1] >= STRAY_SHARE * amounts[main] or \
            by1 - by0 >= TALL * height
    if kept.all():
        return ink, found
    return np.where(kept[group_of[labels]], ink, 0).astype(ink.dtype), [b for b, k in zip(found, kept[1:]) if k]
