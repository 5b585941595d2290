"""Pretrained recognisers shipped inside the package: pretrained/<name>/model.{json,safetensors}.

A name is written `emnist-cnn/<name>` (or just `<name>`).
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PREFIX = "emnist-cnn/"
DEFAULT = PREFIX + "bymerge47"  # the default character model of predict, serve (and read by components)
DEFAULT_LINES = PREFIX + "lines47"  # the default line model of read
CHARSET_LINES = (PREFIX + "lines10",)  # line models of fewer classes: read takes one for a charset it covers
                                       # (lines10 for digits), as a digit field is read better by a digit reader


def names() -> list[str]:
    return sorted(PREFIX + p.name for p in ROOT.iterdir() if (p / "model.json").is_file())


def find(name: str) -> Path | None:
    short = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if "/" in short or "\\" in short or short.startswith("."):
        return None
    directory = ROOT / short
    return directory if (directory / "model.json").is_file() else None


def describe() -> list[dict]:
    """Name, test accuracy and the data each shipped model saw, from its model.json."""
    out = []
    for name in names():
        meta = json.loads((find(name) / "model.json").read_text())
        out.append({"name": name, "architecture": meta.get("architecture"), "classes": "".join(meta["classes"]),
                    "test_accuracy": meta.get("test_accuracy"), "data": meta.get("dataset"),
                    "reads": meta.get("reads", "character"), "test_cer": meta.get("test_cer")})
    return out
