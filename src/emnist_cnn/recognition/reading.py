"""What reading an image gives: each line, its characters, and the n best readings of each line."""
from __future__ import annotations

from dataclasses import dataclass, field


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
    readings; `reader` says how ("lines": the line model, "components": one character per connected mark)."""
    text: str
    characters: list[Character]
    lines: list = field(default_factory=list)
    reader: str = "components"
