"""Split a line of separated handwritten characters into one ink map per character, left to right.

Connected components of the ink, then the parts of one character are merged: pieces stacked above each other
(the dot of an i or j, a broken stroke, the bar of a T drawn apart) overlap in x by at least half of the
narrower one's width. Specks much smaller than the largest mark are dropped as noise.
"""
from __future__ import annotations

import numpy as np

SPECK_FRACTION = 0.02   # a component with less ink area than this share of the largest one is noise
X_OVERLAP = 0.5         # stacked parts: x-overlap ≥ this share of the narrower width


def components(ink: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]], np.ndarray]:
    """(label image, box (x0, y0, x1, y1) of each label 1..n, area of each)."""
    from scipy import ndimage
    labels, n = ndimage.label(ink > 0, structure=np.ones((3, 3), dtype=bool))
    boxes = [(s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)]
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return labels, boxes, areas


def overlaps(a, b) -> bool:
    narrower = min(a[2] - a[0], b[2] - b[0])
    return min(a[2], b[2]) - max(a[0], b[0]) >= X_OVERLAP * narrower


def union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def group_parts(boxes: list, areas: np.ndarray) -> list[tuple[tuple[int, int, int, int], list[int]]]:
    """(box, labels) per character, sorted left to right."""
    big = [i for i, a in enumerate(areas) if a >= SPECK_FRACTION * areas.max()]
    groups = [(boxes[i], [i + 1]) for i in big]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if overlaps(groups[i][0], groups[j][0]):
                    groups[i] = (union(groups[i][0], groups[j][0]), groups[i][1] + groups[j][1])
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(groups, key=lambda g: (g[0][0], g[0][1]))


def segment(ink: np.ndarray) -> tuple[list[tuple[int, int, int, int]], list[np.ndarray]]:
    """Boxes (x0, y0, x1, y1; x1, y1 exclusive) and the ink of each character alone, left to right."""
    labels, boxes, areas = components(ink)
    out_boxes, inks = [], []
    for (x0, y0, x1, y1), parts in group_parts(boxes, areas):
        window = labels[y0:y1, x0:x1]
        inks.append(np.where(np.isin(window, parts), ink[y0:y1, x0:x1], 0).astype(np.float32))
        out_boxes.append((int(x0), int(y0), int(x1), int(y1)))
    return out_boxes, inks
