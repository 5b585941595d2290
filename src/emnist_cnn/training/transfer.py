"""Fine-tuning: a model that starts from the weights of a trained one (--init), optionally with its first feature
stages frozen (--freeze)."""
from __future__ import annotations

from ..config import Config
from ..models import EmnistModel, create_model, load_model


def init_from(cfg: Config, classes: list[str], log=print) -> tuple[Config, EmnistModel]:
    """A model with the weights of cfg.init, its architecture and input normalisation. Its classifier is kept when
    the classes are the source's own, and replaced by a fresh one (reset_classifier) otherwise."""
    source, meta = load_model(cfg.init)
    cfg = cfg.replace(architecture=meta["architecture"], normalize_mean=meta["normalize"]["mean"],
                      normalize_std=meta["normalize"]["std"])
    model = create_model(cfg.architecture, len(meta["classes"]), dropout=cfg.dropout)
    model.load_state_dict(source.state_dict())
    same_classes = list(meta["classes"]) == list(classes)
    if not same_classes:
        model.reset_classifier(len(classes))
    log(f"initialised from {cfg.init}" + ("" if same_classes else
                                          f": a fresh classifier for {len(classes)} classes"))
    if cfg.freeze:
        model.freeze_stages(cfg.freeze)
    return cfg, model
