"""Reading lines of handwriting with a line model (models/line_models.py): find the lines, bring each to the
model's form, read it with CTC decoding (decode.py), and place every character back in the image.

Lines are found by the horizontal projection of the ink: bands of rows with ink, separated by rows without;
a band much thinner than the others (the dots of i and j above a line, an accent) joins its nearest neighbour.
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch

from ..data import normalize
from ..data.ink import ink_box
from ..data.lines import LINE_INK, LINE_MARGIN, line_form_of_writing
from ..errors import ConfigError, ImageError
from ..models import load_model
from ..models.line_models import TRAIL
from .charset import allowed as charset_mask
from .decode import (
    Candidate,
    WordModel,
    align,
    beam_search,
    english_lexicon,
    greedy,
    read_lexicon,
    rescore,
    restore_case,
)
from .reading import Character, Line, ReadOptions
from .segment import OverBudget

MAX_LINES = 50          # more bands of ink than this is not lines of writing
THIN_BAND = 0.35        # a band thinner than this share of the tallest joins its neighbour
LM_WEIGHT = 1.0         # the context's weight in beam search (benchmarks/read.py, validation lines)
BEAM = 10               # prefixes kept per step
LEAD = 2                # blank columns put before a line's form: a narrow first character (a bare 1) at the very
                        # edge was often dropped ("1740" read as "740"); validation lines read as well with them
DECODERS = ("beam", "greedy")


def find_lines(ink: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [top, bottom) of the lines of writing in an ink map, top to bottom."""
    rows = ink.max(axis=1) > 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rows.astype(np.int8), [0]])))
    bands = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]
    if len(bands) > MAX_LINES * 4:
        raise ImageError(f"{len(bands)} bands of ink, more than {MAX_LINES} lines of writing can have")
    while len(bands) > 1:
        heights = [b - a for a, b in bands]
        i = int(np.argmin(heights))
        if heights[i] >= THIN_BAND * max(heights):
            break
        # join the nearer neighbour (the gap between them is smaller)
        up = bands[i][0] - bands[i - 1][1] if i > 0 else np.inf
        down = bands[i + 1][0] - bands[i][1] if i + 1 < len(bands) else np.inf
        j = i - 1 if up <= down else i + 1
        a, b = min(i, j), max(i, j)
        bands[a:b + 1] = [[bands[a][0], bands[b][1]]]
    if len(bands) > MAX_LINES:
        raise ImageError(f"{len(bands)} lines of ink, more than the {MAX_LINES} an image of writing is read for")
    return [(a, b) for a, b in bands]


class LineReader:
    """A line model, ready to read: `read(ink)` for an ink map (preprocess.ink_map)."""

    def __init__(self, model: torch.nn.Module, meta: dict, name: str = ""):
        if meta.get("reads") != "line":
            raise ConfigError(f"{name or 'model'}: not a line model (its model.json says it reads "
                              f"{meta.get('reads', 'characters')!r})")
        self.model, self.meta, self.name = model, meta, name
        self.classes = list(meta["classes"])
        self.blank = len(self.classes)
        self.index = {c: k for k, c in enumerate(self.classes)}
        self.mean, self.std = float(meta["normalize"]["mean"]), float(meta["normalize"]["std"])

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, device: str = "cpu") -> "LineReader":
        model, meta = load_model(name_or_path, device)
        return cls(model, meta, str(name_or_path))

    @torch.inference_mode()
    def log_probs(self, forms: list[np.ndarray]) -> list[np.ndarray]:
        """Per line form (LINE_HEIGHT×W floats), steps×(classes+1) log-probabilities, in one padded batch (each
        line's own W // stride steps: the model's output over the padding is no reading, as in training)."""
        width = max(f.shape[1] for f in forms) + TRAIL
        x = np.zeros((len(forms), 1, forms[0].shape[0], width), np.float32)
        for i, f in enumerate(forms):
            x[i, 0, :, :f.shape[1]] = f
        device = next(self.model.parameters()).device
        t = normalize(torch.from_numpy(x).to(device), self.mean, self.std)
        out = self.model(t.contiguous(memory_format=torch.channels_last)).float().log_softmax(-1).cpu().numpy()
        stride = self.model.stride
        return [out[i, :max(1, f.shape[1] // stride)] for i, f in enumerate(forms)]

    def allowed(self, charset: str | None) -> np.ndarray | None:
        """The classes a charset allows (charset.py), the space between words always among them."""
        if charset is None:
            return None
        letters = [c for c in self.classes if c != " "]
        mask = charset_mask(letters, charset)
        return np.array([True if c == " " else bool(mask[letters.index(c)]) for c in self.classes])

    def context(self, lexicon) -> WordModel | None:
        """'english' (the default), None/'none', a WordModel, or a lexicon file's path."""
        if lexicon is None or lexicon == "none":
            return None
        if isinstance(lexicon, WordModel):
            return lexicon
        if lexicon == "english":
            return english_lexicon()
        return read_lexicon(lexicon)

    def decode(self, lp: np.ndarray, options: ReadOptions, deadline: float | None = None) -> list[Candidate]:
        """The best readings of one line's log-probabilities, the best first: the best path (greedy), or beam
        search with the context, then rescored with the lexicon's near words (beam)."""
        if options.decoder == "greedy" and options.pattern is None:
            return [Candidate("".join(self.classes[k] for k in greedy(lp, self.blank)), 0.0)]
        beam = options.decoder == "beam"
        best = beam_search(lp, self.classes, options.context, options.lm_weight if beam else 0.0, options.pattern,
                           BEAM if beam else 1, deadline=deadline) or [Candidate("", 0.0)]
        if beam:
            best = rescore(lp, best, self.classes, options.context, options.lm_weight, options.pattern, deadline)
        return best

    def read(self, ink: np.ndarray, options: ReadOptions, deadline: float | None = None) -> list[Line]:
        """The lines of an ink map (float, light on 0, cropped), top to bottom; boxes in the ink map's pixels.
        The options come checked and made ready by Recognizer.read_options (the mask, the context, the compiled
        pattern)."""
        bands = find_lines(ink)
        pieces, forms = [], []
        for top, bottom in bands:
            band = ink[top:bottom]
            x0, y0, x1, y1 = ink_box(band > 0)
            pieces.append((x0, top + y0, x1, top + y1))
            form = line_form_of_writing(band)  # line_form crops to the ink itself
            forms.append(np.pad(form, ((0, 0), (LEAD, 0))))
        all_lp = self.log_probs(forms)
        keep = None if options.mask is None else np.concatenate([options.mask, [True]])
        margin = LINE_MARGIN + LEAD  # line form columns before the ink
        # a character's guesses: the classes the charset allows, never the gap between words
        guesses = np.array([c != " " for c in self.classes]) & (True if options.mask is None else options.mask)
        out = []
        for (x0, y0, x1, y1), form, lp in zip(pieces, forms, all_lp):
            if deadline is not None and time.monotonic() > deadline:
                raise OverBudget("reading this image took longer than its time budget")
            if keep is not None:  # a charset: masked classes cannot be read; blank and space always can
                lp = np.where(keep, lp, -1e30)
                lp = lp - np.logaddexp.reduce(lp, axis=1, keepdims=True)
            best = self.decode(lp, options, deadline)
            scores = np.array([c.score for c in best[:options.alternatives]])
            shares = np.exp(scores - scores.max())
            shares /= shares.sum()
            text = best[0].text
            targets = [self.index[c] for c in text]
            spans = align(lp, targets, self.blank)
            zoom = (y1 - y0) / LINE_INK  # ink-map pixels per line-form pixel
            probs = np.exp(lp)
            chars = []
            # CTC emits a character in a step or two near its middle: its box runs from halfway after the
            # previous character's steps to halfway before the next one's (the line's ends at the ends)
            edges = [0.0] + [(b + 1 + a2) / 2 for (_, b), (a2, _) in zip(spans, spans[1:])] + [float(len(lp))]
            for i, (k, (a, b)) in enumerate(zip(targets, spans)):
                if self.classes[k] == " ":
                    continue
                p = np.where(guesses, probs[a:b + 1, :self.blank].mean(axis=0), 0.0)
                p = p / max(p.sum(), 1e-30)
                order = [j for j in np.argsort(-p, kind="stable")[:options.top_k] if guesses[j]]
                cx0 = x0 + max(0, round((edges[i] * self.model.stride - margin) * zoom))
                cx1 = min(x1, x0 + round((edges[i + 1] * self.model.stride - margin) * zoom))
                chars.append(Character(self.classes[k], float(probs[a:b + 1, k].max()), (cx0, y0, max(cx1, cx0 + 1),
                                       y1), [(self.classes[j], float(p[j])) for j in order]))
            confidence = float(np.prod([c.confidence for c in chars])) if chars else 0.0
            out.append(Line(restore_case(text, self.classes), confidence, (x0, y0, x1, y1), chars,
                            [(restore_case(c.text, self.classes), float(s)) for c, s in zip(best, shares)]))
        return out
