"""Model files: model.safetensors + model.json (usable without the run), and last.pt for --resume.

Nothing here unpickles: weights are safetensors, metadata JSON, and last.pt is read with weights_only=True.
Every file is written to a temporary name and renamed, so a crash never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..config import Config
from ..errors import ModelFileError
from ..files import atomic_write, write_json
from .registry import create_model

INPUT_FORMAT = "28x28 grayscale, upright, white ink on black background, pixels/255 then (x-mean)/std"
LINE_INPUT_FORMAT = ("32 rows x any width (a line; the ink's rows scaled to 28 with 2 rows and 2 columns of margin), "
                     "grayscale, white ink on black background, pixels scaled to 0-1 then (x-mean)/std")
REQUIRED = {"architecture": str, "classes": list, "normalize": dict}  # what loading a model needs of model.json


def save_model(directory: Path, model: nn.Module, meta: dict) -> None:
    """model.safetensors + model.json; meta must hold architecture, classes, normalize (see load_model)."""
    from safetensors.torch import save_file
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(Path(directory) / "model.safetensors", lambda p: save_file(state, str(p)))
    write_json(Path(directory) / "model.json",
               {**meta, "input": LINE_INPUT_FORMAT if meta.get("reads") == "line" else INPUT_FORMAT})


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
    meta = read_meta(directory)
    try:
        model = create_model(meta["architecture"], num_classes=len(meta["classes"]), **meta.get("model_args", {}))
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"{directory / 'model.json'}: invalid model metadata ({e})") from None
    try:
        state = load_file(str(directory / "model.safetensors"))
        model.load_state_dict(state)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ModelFileError(f"{directory / 'model.safetensors'}: cannot load weights ({e})") from None
    return model.to(device).eval(), meta


def read_meta(directory: Path) -> dict:
    """model.json, checked for every field that loading and using the model needs: a model whose metadata lacks
    one is refused (a missing `normalize` would silently feed it wrongly scaled pixels)."""
    path = Path(directory) / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{path}: unreadable model metadata ({e})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    for key, kind in REQUIRED.items():
        if not isinstance(meta.get(key), kind):
            found = "nothing" if key not in meta else type(meta[key]).__name__
            raise ModelFileError(f"{path}: field {key!r} must be a {kind.__name__}, found {found}")
    norm = meta["normalize"]
    if not all(isinstance(norm.get(k), (int, float)) for k in ("mean", "std")) or not norm["std"] > 0:
        raise ModelFileError(f"{path}: field 'normalize' must hold numbers 'mean' and 'std' > 0, found {norm}")
    return meta


def training_config(path_or_name: str | os.PathLike) -> Config:
    """The configuration a model was trained with: its run's config.json, else the `config` its model.json
    records (shipped models). Evaluation, the report and export build the model's dataset from it."""
    directory = resolve_model_dir(path_or_name)
    source = directory / "config.json"
    try:
        if source.is_file():
            return Config.from_json(source)
        meta = read_meta(directory)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{source}: unreadable configuration ({e})") from None
    recorded, dataset = meta.get("config"), meta.get("dataset") or {}
    name = dataset.get("name", "") if isinstance(dataset, dict) else ""
    if not isinstance(recorded, dict) and name and not any(c in name for c in "[ "):
        # model.json files written before it recorded its config: a plain split name is enough
        return Config(split=name, val_fraction=0.0 if dataset.get("val") == 0 else Config.val_fraction)
    if not isinstance(recorded, dict):
        raise ModelFileError(f"{directory}: neither config.json nor model.json's 'config' says which data the "
                             f"model was trained on; name it (--split, --data-dir)")
    return Config.from_dict(recorded)


def save_training_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def load_training_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable for resuming
        raise ModelFileError(f"{path}: cannot read training state ({e})") from None
