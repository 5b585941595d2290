"""What reading an image gives: each line, its characters, and the n best readings of each line; and how to read
it (ReadOptions)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ReadOptions:
    """read()'s options, checked and made ready once (Recognizer.read_options): the CLI and the server check them
    before any image arrives, then read every image with them."""
    reader: str                         # "lines" or "components" ("auto" resolved)
    top_k: int = 5                      # guesses kept per character
    budget: float | None = None         # seconds one image may take (segment.OverBudget); None: no bound
    mask: np.ndarray | None = None      # the classes the charset allows; None: all
    context: object | None = None       # the lexicon's WordModel (decode.py); None: no context
    lm_weight: float = 0.0              # the context's weight in beam search
    pattern: object | None = None       # the compiled pattern every line must match
    alternatives: int = 3               # readings kept per line
    decoder: str = "beam"               # "beam" or "greedy"
    line_reader: object | None = None   # the line model that reads (Recognizer.line_reader picks it)


@dataclass
class Character:
    """One character found by read(): its best guess, the top-k, and its box (x0, y0, x1, y1) in the image."""
    character: str
    confidence: float
    box: tuple[int, int, int, int]
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Line:
    """One line read: its text, the confidence of that text, its box, its characters and the n best readings."""
    text: str
    confidence: float
    box: tuple[int, int, int, int]
    characters: list = field(default_factory=list)
    alternatives: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Reading:
    """What read() found: the text (lines joined by newlines), every character, and each line with its n best
    readings; `reader` says how ("lines": the line model, "components": one character per connected mark) and
    `read_by` which model read them."""
    text: str
    characters: list[Character]
    lines: list = field(default_factory=list)
    reader: str = "components"
    read_by: str = ""
