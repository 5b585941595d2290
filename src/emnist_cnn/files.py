"""Writing files so that a crash, a kill or a full disk never leaves a half-written one: write a temporary file
beside the target, then rename it over the target (atomic on POSIX and Windows)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file; some writers (safetensors) create theirs 0600


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """write(tmp_path) then rename over path; on failure the target is untouched and the temporary file removed.
    Every file gets the same mode, whichever library wrote it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_jsonl(path: str | os.PathLike) -> list:
    """The JSON value of each line. A torn last line (what a kill or a full disk can leave) is dropped; a damaged
    line before it is a ValueError naming the file and line. A missing file raises FileNotFoundError."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if n == len(lines):
                break
            raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None
    return rows


def write_jsonl(path: str | os.PathLike, rows: list) -> None:
    """All rows, one JSON value a line, written atomically."""
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
