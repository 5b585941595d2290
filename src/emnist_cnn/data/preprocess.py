"""Any image of a handwritten character -> the 28×28 form the models saw in training.

Follows the EMNIST paper's conversion of NIST scans (Cohen et al. 2017, section II-A): grayscale, light ink on a
dark background, faint noise dropped, cropped to the ink, Gaussian blur (σ = 1 at NIST's 128-pixel scan scale),
centred in a square keeping the aspect ratio, padded, resized to 28×28 (bicubic), intensities stretched to
0-255. The padding is measured on EMNIST itself: the ink's longer side spans 24 of the 28 pixels (2 on each side).
Output is upright (rows top to bottom), as every model.json here expects.

Photos of paper (uneven light, shadows, ruled lines, page edges) go through ink.py first; clean scans and canvas
drawings are recognised as such and converted exactly as before.
"""
from __future__ import annotations

import functools
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError
from . import ink
from .ink import ink_box

FORMATS = ("PNG", "JPEG", "BMP", "WEBP")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # the files of those formats, by name
MAX_PIXELS = 25_000_000     # larger images are refused before decoding (decompression bombs)
WORK_SIDE = 1024            # larger images are reduced first: faster, and no character needs more
PHOTO_SIDE = 400            # a larger JPEG is decoded straight at 1/2, 1/4 or 1/8 of its size, not below this
MIN_CONTRAST = 40           # ink must differ from the paper by this much (of 255), else the image is blank
NOISE_FRACTION = 0.15       # ink fainter than this share of the darkest stroke is noise
SIZE, INNER = 28, 24        # output side, and the side of the ink's bounding square within it
SCALE = 4                   # work at 4 × 28 = 112 pixels, close to NIST's 128, where σ = 1 is the paper's blur


class UnsupportedImage(ImageError):
    """Not an image in one of FORMATS."""


class UndecodableImage(ImageError):
    """Looks like a supported format but cannot be decoded (truncated, corrupt)."""


class ImageTooLarge(ImageError):
    """More than MAX_PIXELS pixels."""


class BlankImage(ImageError):
    """No ink: an empty or uniform image (a guess would be meaningless)."""


def source_name(source, name: str = "image") -> str:
    """How errors name an image: its path if it has one."""
    return str(source) if isinstance(source, (str, os.PathLike)) else name


def open_image(source, name: str = "image") -> Image.Image:
    """A decoded PIL image from a path, bytes, a file object or a PIL image; size checked before decoding."""
    name = source_name(source, name)
    if isinstance(source, Image.Image):
        img = source
    else:
        if isinstance(source, (str, os.PathLike)):
            try:
                source = Path(source).read_bytes()
            except OSError as e:
                raise ImageError(f"{name}: cannot read ({e.strerror or e})") from None
        data = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
        try:
            img = Image.open(data, formats=FORMATS)
        except UnidentifiedImageError:
            raise UnsupportedImage(f"{name}: not a supported image (expected {', '.join(FORMATS)})") from None
        except Image.DecompressionBombError as e:
            raise ImageTooLarge(f"{name}: {e}") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise UndecodableImage(f"{name}: cannot decode ({e})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageTooLarge(f"{name}: {w}×{h} pixels is more than the limit of {MAX_PIXELS:,}")
    if w == 0 or h == 0:
        raise BlankImage(f"{name}: the image is empty ({w}×{h} pixels)")
    try:
        if img.format == "JPEG" and max(w, h) > WORK_SIDE:  # a phone photo: decode at 1/2-1/8 scale (much faster)
            scale = next(r for r in (8, 4, 2, 1) if max(w, h) // r >= PHOTO_SIDE)  # what the decoder can do
            img.draft("RGB" if img.mode not in ("L", "1") else "L", (w // scale, h // scale))
            img.info["original_width"] = w
        img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UndecodableImage(f"{name}: cannot decode ({e})") from None
    return img


def grayscale(img: Image.Image) -> np.ndarray:
    """Luminance 0-255: uint8 for opaque images (Pillow's own conversion, the fast path), float32 for 16-bit and
    float images and for transparent ones, whose clear pixels become paper of the colour that contrasts with the ink."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float32)
        return arr * (255.0 / 65535.0) if arr.max(initial=0) > 255 else arr
    if img.mode in ("RGBA", "LA", "PA", "P") or "transparency" in img.info:
        img = img.convert("RGBA")
        if img.getchannel("A").getextrema()[0] < 255:
            rgba = np.asarray(img, dtype=np.float32)
            luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            alpha = rgba[..., 3] / 255.0
            ink_luma = (luma * alpha).sum() / max(alpha.sum(), 1e-6)
            paper = 255.0 if ink_luma < 128 else 0.0  # dark ink on clear glass: show it on white
            return luma * alpha + paper * (1 - alpha)
    return np.asarray(img.convert("L"))


def median_level(values: np.ndarray) -> float:
    """The median of a sample of gray levels; by counting for uint8 (several times faster than sorting)."""
    if values.dtype != np.uint8:
        return float(np.median(values))
    cumulative = np.bincount(values.ravel(), minlength=256).cumsum()
    return float(np.searchsorted(cumulative, (values.size + 1) / 2))


def ink_map(img: Image.Image, name: str = "image") -> tuple[np.ndarray, tuple[int, int], float]:
    """float32 ink intensity 0-255 on a 0 background (light-on-dark), faint noise removed, cropped to the ink's
    bounding box; BlankImage if there is none. Also (left, top) of that box and the image's pixels per ink-map
    pixel (very large images are reduced first), so that positions in the map can be given in the image."""
    width = img.info.get("original_width", img.width)
    if max(img.size) > WORK_SIDE:
        img = img.copy()
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    gray = grayscale(img)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    # Dark ink on light paper (the border mostly light; a shadow may darken part of it) -> EMNIST's light on dark
    if np.percentile(border, 75) > 127:
        gray = 255 - gray
    on_paper = 255 - gray  # the ink.py view: dark ink on light paper
    if not ink.is_clean(on_paper):  # a photo: find the ink under uneven light, without lines and page edges
        found = ink.photo_ink(on_paper)
        peak = float(found.max())
        if peak < MIN_CONTRAST:
            raise BlankImage(f"{name}: no ink found (after evening out the light, the strongest mark is "
                             f"{peak:.0f} of 255 darker than its paper; at least {MIN_CONTRAST} is needed)")
        mask = found > 0
        gray, paper = found, 0.0
    else:
        paper = median_level(gray[::4, ::4])  # most of the image is paper; every 16th pixel estimates its level
        peak = float(gray.max()) - paper
        if peak < MIN_CONTRAST:
            raise BlankImage(f"{name}: no ink found (the strongest mark differs from the background by "
                             f"{max(peak, 0):.0f} of 255; at least {MIN_CONTRAST} is needed)")
        # Ink is what stands out from the paper by more than a share of the strongest stroke; the rest is noise.
        # Found on the whole image once; everything after works on the ink's bounding box only.
        mask = gray >= paper + NOISE_FRACTION * peak
    x0, y0, x1, y1 = ink_box(mask)
    box = (slice(y0, y1), slice(x0, x1))
    cropped = np.where(mask[box], gray[box].astype(np.float32) - np.float32(paper), np.float32(0))
    return cropped, (x0, y0), width / img.width


@functools.lru_cache(maxsize=1)
def blur_and_shrink() -> np.ndarray:
    """The 28×112 matrix M with M @ X @ M.T == bicubic 112 -> 28 (Pillow's) of the σ = 1 Gaussian blur (scipy's,
    edges reflected) of X: both steps are linear and separable, so they fold into one small matrix product per
    axis, ~15x cheaper than blurring and resizing the 112×112 square every time."""
    from scipy.ndimage import gaussian_filter1d
    side = SIZE * SCALE
    blur = gaussian_filter1d(np.eye(side), sigma=1.0, axis=0)  # column j: the blur of a unit impulse at j
    # Pillow resizes the identity's rows horizontally only: row i becomes the weights input i gets in each output
    shrink = np.asarray(Image.fromarray(np.eye(side, dtype=np.float32)).resize((SIZE, side),
                                                                            Image.Resampling.BICUBIC)).T
    return (shrink.astype(np.float64) @ blur).astype(np.float32)


def emnist_form(ink: np.ndarray) -> np.ndarray:
    """An ink map (light on dark, background 0, not blank) -> uint8 28×28 in EMNIST's form."""
    box = ink_box(ink)
    if box is None:
        raise BlankImage("no ink found")
    crop = ink[box[1]:box[3], box[0]:box[2]]
    h, w = crop.shape
    inner, side = INNER * SCALE, SIZE * SCALE
    f = inner / max(h, w)
    nh, nw = max(1, round(h * f)), max(1, round(w * f))
    scaled = np.clip(np.asarray(Image.fromarray(crop).resize((nw, nh), Image.Resampling.BICUBIC)), 0, None)
    # centred in the side×side square (zeros elsewhere), blurred, shrunk to 28×28: only M's columns under the
    # ink contribute
    top, left = (side - nh) // 2, (side - nw) // 2
    m = blur_and_shrink()
    small = np.clip(m[:, top:top + nh] @ scaled @ m[:, left:left + nw].T, 0, None)
    peak = small.max()
    if peak <= 0:
        raise BlankImage("no ink left after resizing")
    return np.round(small * (255.0 / peak)).astype(np.uint8)


def to_emnist(source, name: str = "image") -> np.ndarray:
    """Path / bytes / file / PIL image -> uint8 28×28, white ink on black, upright, centred as EMNIST."""
    return emnist_form(ink_map(open_image(source, name), source_name(source, name))[0])
