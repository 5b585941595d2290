"""Fine-tuning: a model that starts from the weights of a trained one (--init), optionally with its first feature
stages frozen (--freeze)."""
from __future__ import annotations

import torch
from torch import nn

from ..config import Config
from ..models import EmnistModel, create_model, load_model
from ..models.checkpoint import read_meta, resolve_model_dir


def init_from(cfg: Config, classes: list[str], log=print) -> tuple[Config, EmnistModel]:
    """A model with the weights of cfg.init, its architecture and input normalisation. Its classifier is kept when
    the classes are the source's own, cut down to their rows when they are some of the source's (a digits model
    from bymerge47 or lines47 starts as the source masked to digits), and a fresh one (reset_classifier)
    otherwise."""
    source, meta = load_model(cfg.init)
    cfg = cfg.replace(architecture=meta["architecture"], normalize_mean=meta["normalize"]["mean"],
                      normalize_std=meta["normalize"]["std"])
    model = create_model(cfg.architecture, len(meta["classes"]), dropout=cfg.dropout)
    model.load_state_dict(source.state_dict())
    source_classes = list(meta["classes"])
    if source_classes == list(classes):
        how = ""
    elif set(classes) <= set(source_classes):
        keep_rows(model, [source_classes.index(c) for c in classes])
        how = f": its classifier cut down to the {len(classes)} classes of this data"
    else:
        model.reset_classifier(len(classes))
        how = f": a fresh classifier for {len(classes)} classes"
    log(f"initialised from {cfg.init}{how}")
    if cfg.freeze:
        model.freeze_stages(cfg.freeze)
    return cfg, model


@torch.no_grad()
def keep_rows(model: EmnistModel, rows: list[int]) -> None:
    """The classifier's output layer cut down to these classes' rows (and a line model's CTC blank, the last)."""
    old = model.classifier[-1]
    if model.reads == "line":
        rows = [*rows, old.out_features - 1]
    new = nn.Linear(old.in_features, len(rows)).to(old.weight.device)
    new.weight.copy_(old.weight[rows])
    new.bias.copy_(old.bias[rows])
    model.classifier[-1] = new


def init_architecture(cfg: Config) -> Config:
    """cfg with cfg.init's architecture (from its model.json alone): what decides whether the run trains a
    character model or a line model (training/lines.py)."""
    return cfg.replace(architecture=read_meta(resolve_model_dir(cfg.init))["architecture"]) if cfg.init else cfg
