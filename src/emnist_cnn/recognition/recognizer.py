"""Recognise handwriting in images: one character (`predict`, a character model) or the lines of writing in an
image (`read`: a line model, lines.py, or one character per separate mark, segment.py).

The character model sits behind a backend (backends.py): PyTorch or ONNX Runtime; the line model runs in PyTorch.
"""
from __future__ import annotations

import os
import time

import numpy as np

from ..data import normalize, preprocess
from ..errors import ConfigError, ImageError, ModelFileError
from ..models.pretrained import DEFAULT as DEFAULT_MODEL
from ..models.pretrained import CHARSET_LINES
from ..models.pretrained import DEFAULT_LINES as DEFAULT_LINE_MODEL
from .backends import BACKENDS, Backend
from .charset import allowed as charset_mask
from .charset import constrain
from .decode import compile_pattern
from .lines import DECODERS, LM_WEIGHT, LineReader
from .reading import Character, Line, Reading, ReadOptions
from .segment import TALL

READERS = ("auto", "lines", "components")


class Recognizer:
    def __init__(self, backend: Backend, name: str = "", lines: LineReader | None = None,
                 charset_lines: tuple[LineReader, ...] | list[LineReader] = ()):
        self.backend = backend
        self.name = name or str(backend.meta.get("name") or backend.meta.get("architecture") or "model")
        self.classes = list(backend.classes)
        norm = backend.meta["normalize"]  # required: checked when the model was loaded
        self.mean, self.std = float(norm["mean"]), float(norm["std"])
        self.lines = lines  # the line model read() uses by default; None: connected components
        self.charset_lines = list(charset_lines)  # line models of fewer classes, each for a charset it covers

    @classmethod
    def load(cls, name_or_path: str | os.PathLike = DEFAULT_MODEL, backend: str = "torch",
             device: str = "cpu", lines: str | os.PathLike | None = "auto") -> "Recognizer":
        """A character model for predict (and for read by connected components) and a line model for read.
        `lines="auto"`: the shipped line models beside the default character model (lines47, and lines10 for
        digits: line_reader), none beside another one; a line model given as the model or as `lines` is the
        only one."""
        try:
            loader = BACKENDS[backend]
        except KeyError:
            raise ConfigError(f"unknown backend {backend!r}; available: {', '.join(sorted(BACKENDS))}") from None
        charset_lines = []
        if reads_lines(name_or_path):
            lines, name_or_path = name_or_path, DEFAULT_MODEL
        elif lines == "auto":
            lines = DEFAULT_LINE_MODEL if str(name_or_path) == DEFAULT_MODEL else None
            if lines is not None:
                charset_lines = [LineReader.load(n, device) for n in CHARSET_LINES]
        reader = LineReader.load(lines, device) if lines is not None else None
        return cls(loader(name_or_path, device), name=str(name_or_path), lines=reader, charset_lines=charset_lines)

    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 N×28×28 images already in EMNIST form (white on black, upright)."""
        x = normalize(np.asarray(images_u8, dtype=np.float32)[:, None] / 255.0, self.mean, self.std)
        z = self.backend.logits(x)
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def check_top_k(self, top_k: int) -> int:
        """The one rule for top_k, in Python, the CLI and REST (422 there): 1 to the number of classes."""
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or \
                not 1 <= top_k <= len(self.classes):
            raise ConfigError(f"top_k: expected an integer from 1 to {len(self.classes)}, found {top_k!r}",
                              field="top_k")
        return int(top_k)

    def allowed(self, charset: str | None) -> np.ndarray:
        """The classes a charset allows (charset.py): a mask, or a ConfigError for a name or set this model
        cannot answer with."""
        return charset_mask(self.classes, charset)

    def top(self, probs: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The k most probable classes (fewer if the allowed ones are fewer), probabilities renormalised over
        the allowed classes. k is the caller's to check (check_top_k): this runs once per character."""
        if allowed is not None:
            probs = constrain(probs, allowed)
            k = min(k, int(allowed.sum()))
        order = np.argsort(-probs, kind="stable")[:k]
        return [(self.classes[i], float(probs[i])) for i in order]

    def checked(self, top_k: int, charset: str | None) -> np.ndarray | None:
        """top_k and the charset's mask, checked before any image is decoded."""
        self.check_top_k(top_k)
        return None if charset is None else self.allowed(charset)

    def classify(self, images_u8: np.ndarray, top_k: int = 5, charset: str | None = None
                 ) -> list[list[tuple[str, float]]]:
        """Top-k (character, probability) for each uint8 N×28×28 image already in EMNIST form."""
        mask = self.checked(top_k, charset)
        return [self.top(p, top_k, mask) for p in self.probabilities(images_u8)]

    def predict(self, image, top_k: int = 5, charset: str | None = None) -> list[tuple[str, float]]:
        """Top-k (character, probability) for one image of a character (path, bytes, file or PIL image);
        `charset` ("digits", "upper", "lower", "letters", "alnum" or the characters themselves) constrains it."""
        return self.predict_batch([image], top_k, charset)[0]

    def predict_batch(self, images, top_k: int = 5, charset: str | None = None) -> list[list[tuple[str, float]]]:
        mask = self.checked(top_k, charset)
        forms = np.stack([character_form(im) for im in images])
        return [self.top(p, top_k, mask) for p in self.probabilities(forms)]

    def read(self, image, top_k: int = 5, budget: float | None = None, charset: str | None = None,
             reader: str = "auto", lexicon="english", lm_weight: float = LM_WEIGHT, pattern: str | None = None,
             alternatives: int = 3, decoder: str = "beam") -> Reading:
        """The writing in an image: its lines top to bottom, each left to right, with confidences, boxes and the
        n best readings of each line. reader "lines" (the default where a line model is loaded) reads whole lines
        with CTC and context: `lexicon` ("english", "none" or a file), `lm_weight` (0: none), `pattern` (a
        regular expression each line must match), `decoder` ("beam" or "greedy"). reader "components" reads one
        character per connected mark (characters must not touch). `charset` constrains either; `budget` (seconds)
        bounds the work (segment.OverBudget)."""
        return self.read_with(image, self.read_options(top_k, budget, charset, reader, lexicon, lm_weight, pattern,
                                                       alternatives, decoder))

    def read_with(self, image, options: ReadOptions) -> Reading:
        """read() with options made ready by read_options (checked once for many images)."""
        deadline = None if options.budget is None else time.monotonic() + options.budget
        img = preprocess.open_image(image)
        ink, (left, top), scale = preprocess.ink_map(img, preprocess.source_name(image))
        def place(box):  # boxes refer to the original image: the ink map is cropped, very large images reduced
            x0, y0, x1, y1 = box
            return (round((x0 + left) * scale), round((y0 + top) * scale), round((x1 + left) * scale),
                    round((y1 + top) * scale))
        if options.reader == "lines":
            lines = options.line_reader.read(ink, options, deadline)
            for line in lines:
                line.box = place(line.box)
                for c in line.characters:
                    c.box = place(c.box)
            return Reading("\n".join(line.text for line in lines), [c for line in lines for c in line.characters],
                           lines, "lines", self.read_by(options))
        from .segment import segment
        boxes, inks = segment(ink, deadline)
        probs = self.probabilities(np.stack([preprocess.emnist_form(ink) for ink in inks]))
        tops = [self.top(p, options.top_k, options.mask) for p in probs]
        chars = [Character(t[0][0], t[0][1], place(b), t) for b, t in zip(boxes, tops)]
        text = text_with_spaces(chars)
        whole = Line(text, float(np.prod([c.confidence for c in chars])), place((0, 0, ink.shape[1], ink.shape[0])),
                     chars, [(text, 1.0)])
        return Reading(text, chars, [whole], "components", self.read_by(options))

    def read_options(self, top_k: int = 5, budget: float | None = None, charset: str | None = None,
                     reader: str = "auto", lexicon="english", lm_weight: float = LM_WEIGHT,
                     pattern: str | None = None, alternatives: int = 3, decoder: str = "beam") -> ReadOptions:
        """read()'s arguments checked, before any image is decoded, and made ready: the charset's mask, the
        lexicon read, the pattern compiled. A bad one is a ConfigError whose `field` names it."""
        if reader not in READERS:
            raise ConfigError(f"reader: expected one of {', '.join(READERS)}, found {reader!r}", field="reader")
        if reader == "auto":
            reader = "lines" if self.lines is not None else "components"
        if reader == "lines" and self.lines is None:
            raise ConfigError(f"reader 'lines': {self.name} has no line model beside it "
                              f"(load one: Recognizer.load(lines=...), --line-model)", field="reader")
        self.check_top_k(top_k)
        if isinstance(alternatives, bool) or not isinstance(alternatives, int) or alternatives < 1:
            raise ConfigError(f"alternatives: expected an integer >= 1, found {alternatives!r}", field="alternatives")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or
                                   not budget >= 0):
            raise ConfigError(f"budget: expected seconds >= 0 or None, found {budget!r}", field="budget")
        if reader == "components":
            return ReadOptions(reader, top_k, budget, None if charset is None else self.allowed(charset))
        if not (isinstance(lm_weight, (int, float)) and np.isfinite(lm_weight) and lm_weight >= 0):
            raise ConfigError(f"lm_weight: expected a number >= 0, found {lm_weight!r}", field="lm_weight")
        if decoder not in DECODERS:
            raise ConfigError(f"decoder: expected {' or '.join(DECODERS)}, found {decoder!r}", field="decoder")
        line_reader = self.line_reader(charset)
        context = line_reader.context(lexicon) if lm_weight and decoder == "beam" else None  # greedy reads none
        return ReadOptions(reader, top_k, budget, line_reader.allowed(charset), context, float(lm_weight),
                           compile_pattern(pattern), alternatives, decoder, line_reader)

    def read_by(self, options: ReadOptions) -> str:
        """The model that reads with these options: the line model read_options chose, or the character model."""
        return options.line_reader.name if options.reader == "lines" else self.name

    def line_reader(self, charset: str | None) -> LineReader:
        """The line model that reads a charset: one of charset_lines whose classes hold every class the charset
        allows in the default line model (lines10 for digits, or for "0123"), else the default line model."""
        if charset is None or not self.charset_lines:
            return self.lines
        mask = self.lines.allowed(charset)  # an unknown name or a charset no class answers: the error is here
        wanted = {c for c, ok in zip(self.lines.classes, mask) if ok and c != " "}
        return next((r for r in self.charset_lines if wanted <= set(r.classes)), self.lines)


def reads_lines(name_or_path) -> bool:
    """Whether a model (path or shipped name) is a line model, from its model.json."""
    from ..models.checkpoint import read_meta, resolve_model_dir
    try:
        return read_meta(resolve_model_dir(name_or_path)).get("reads") == "line"
    except ModelFileError:
        return False


class SeveralCharacters(ImageError):
    """An image given as one character that holds several side by side."""


def character_form(image, name: str = "image") -> np.ndarray:
    """The 28×28 EMNIST form of an image of one character, stray marks left out (segment.main_character); an
    image holding several characters side by side is an error that says so (classifying their blend would be a
    confident wrong answer)."""
    from .segment import main_character
    name = preprocess.source_name(image, name)
    ink, _, _ = preprocess.ink_map(preprocess.open_image(image, name), name)
    ink, boxes = main_character(ink)
    if several_characters(boxes):
        raise SeveralCharacters(f"{name}: {len(boxes)} characters side by side, not one; `read` reads them "
                                f"(emnist-cnn read, Recognizer.read, POST /api/v1/read)")
    return preprocess.emnist_form(ink)


def several_characters(boxes: list[tuple[int, int, int, int]]) -> bool:
    """At least two marks of nearly the full height, apart by a clear gap (a fifth of that height): what a word
    or a number looks like, and what the parts of one character do not (segment merges them when stacked; side by
    side they are shorter or close). None of the 2,000 single EMNIST characters of benchmarks/predict.py meets it."""
    if len(boxes) < 2:
        return False
    height = max(b[3] - b[1] for b in boxes)
    tall = [b for b in boxes if b[3] - b[1] >= TALL * height]
    return any(b[0] - a[2] >= 0.2 * height for a, b in zip(tall, tall[1:]))


def text_with_spaces(chars: list[Character]) -> str:
    """Join characters; a gap wider than 0.75 × the median character height is a space between words."""
    if not chars:
        return ""
    height = float(np.median([c.box[3] - c.box[1] for c in chars]))
    out = chars[0].character
    for prev, c in zip(chars, chars[1:]):
        out += (" " if c.box[0] - prev.box[2] > 0.75 * height else "") + c.character
    return out


def image_files(paths) -> list[str | ImageError]:
    """Each given file, and the images inside each given folder (sorted); a missing path, or a folder without
    images, stands in the list as the ImageError that says so, so that the caller can report it and go on."""
    out: list[str | ImageError] = []
    for p in map(os.fspath, paths):
        if os.path.isdir(p):
            found = sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(preprocess.IMAGE_SUFFIXES))
            out += found or [ImageError(f"{p}: a folder without images "
                                        f"({', '.join(preprocess.IMAGE_SUFFIXES)})")]
        elif os.path.exists(p):
            out.append(p)
        else:
            out.append(ImageError(f"{p}: no such file or folder"))
    return out
