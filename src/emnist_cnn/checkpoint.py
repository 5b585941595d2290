"""Model files: model.safetensors + model.json (usable without the run), and last.pt for --resume.

Nothing here unpickles: weights are safetensors, metadata JSON, and last.pt is read with weights_only=True.
Every file is written to a temporary name and renamed, so a crash never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import torch
from torch import nn

from .models import create_model

INPUT_FORMAT = "28x28 grayscale, upright, white ink on black background, pixels/255 then (x-mean)/std"


class ModelFileError(ValueError):
    """A model path or name that cannot be loaded; the message says why."""


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename over path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


def git_revision() -> str:
    """HEAD of the repository this package runs from (with -dirty for local changes), else 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (rev + ("-dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_model(directory: Path, model: nn.Module, meta: dict) -> None:
    """model.safetensors + model.json; meta must hold architecture, classes, normalize (see load_model)."""
    from safetensors.torch import save_file
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(Path(directory) / "model.safetensors", lambda p: save_file(state, str(p)))
    write_json(Path(directory) / "model.json", {**meta, "input": INPUT_FORMAT})


def resolve_model_dir(path_or_name: str | os.PathLike) -> Path:
    """A run directory, a directory with model.json, a model.json / model.safetensors path, or a pretrained name."""
    p = Path(path_or_name)
    if p.is_file() and p.name in ("model.json", "model.safetensors"):
        p = p.parent
    if (p / "model.json").is_file():
        return p
    from . import pretrained
    if (found := pretrained.find(str(path_or_name))) is not None:
        return found
    raise ModelFileError(f"{path_or_name}: not a model (no model.json there) and not a pretrained name; "
                         f"pretrained: {', '.join(pretrained.names()) or 'none'}")


def load_model(path_or_name: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(model in eval mode, its model.json) from anything resolve_model_dir accepts."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    directory = resolve_model_dir(path_or_name)
    try:
        meta = json.loads((directory / "model.json").read_text())
        model = create_model(meta["architecture"], num_classes=len(meta["classes"]), **meta.get("model_args", {}))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{directory / 'model.json'}: invalid model metadata ({e})") from None
    try:
        state = load_file(str(directory / "model.safetensors"))
        model.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ModelFileError(f"{directory / 'model.safetensors'}: cannot load weights ({e})") from None
    return model.to(device).eval(), meta


def save_training_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_training_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable for resuming
        raise ModelFileError(f"{path}: cannot read training state ({e})") from None
