"""One evaluate(): training-time validation, `emnist-cnn evaluate` and the report all call it; evaluate_models()
is what `emnist-cnn evaluate` computes (one model, an ensemble, with or without test-time augmentation)."""
from __future__ import annotations

import os

import torch

from ..config import Config
from ..data import dataset_for, to_input
from ..errors import ConfigError, DataError, ModelFileError
from ..models import load_model, training_config
from ..runtime import autocast, resolve_device, resolve_precision
from .ensemble import Ensemble, ShiftTTA, check_members
from .metrics import metrics_from_logits

PARTS = ("train", "val", "test")
SUMMARY = ("n", "accuracy", "top5_accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted",
           "roc_auc_macro")  # what `emnist-cnn evaluate` prints, and shipped models record as test_metrics


def summary(metrics: dict) -> dict:
    if metrics.get("reads") == "line":  # CER and exact lines per spacing: all of it is the summary
        return metrics
    return {k: metrics[k] for k in SUMMARY}


@torch.inference_mode()
def predict_logits(model, images_u8: torch.Tensor, mean: float, std: float, device: torch.device,
                   precision: str = "fp32", batch_size: int = 256, channels_last: bool = True) -> torch.Tensor:
    """Logits (float32, on the CPU) for a uint8 image tensor, in large batches."""
    was_training = model.training
    model.eval()
    if channels_last:  # the model's weights and the inputs in one memory format, or oneDNN converts every call
        model.to(memory_format=torch.channels_last)
    out = []
    for i in range(0, len(images_u8), batch_size):
        x = to_input(images_u8[i:i + batch_size].to(device, non_blocking=True), mean, std, channels_last)
        with autocast(device, precision):
            out.append(model(x).float())
    model.train(was_training)
    return torch.cat(out).cpu() if out else torch.empty(0)


def evaluate(model, images_u8: torch.Tensor, labels: torch.Tensor, classes: list[str], *, mean: float, std: float,
             device: torch.device | str = "cpu", precision: str = "fp32", batch_size: int = 256,
             channels_last: bool = True, with_details: bool = True, return_logits: bool = False):
    """Evaluate model on uint8 images; returns the metrics dict (and the logits if asked)."""
    device = torch.device(device)
    logits = predict_logits(model, images_u8, mean, std, device, precision, batch_size, channels_last)
    metrics = metrics_from_logits(logits, labels, classes, with_details)
    return (metrics, logits) if return_logits else metrics


def evaluate_models(models: list[str | os.PathLike], part: str = "test", *, tta: bool = False,
                    split: str | None = None, data_dir: str | None = None, classes: str | None = None,
                    device: str = "auto", precision: str = "fp32", eval_batch_size: int = 256) -> dict:
    """Metrics of one model, or of the ensemble of several (mean probability), on a part of a dataset: by default
    the dataset the first model was trained on (its config.json, or the config its model.json records);
    split/data_dir/classes name another. tta averages over one-pixel shifts of each image."""
    if part not in PARTS:
        raise ConfigError(f"part {part!r}: expected one of {', '.join(PARTS)}")
    if not models:
        raise ConfigError("evaluate_models: no model given")
    dev = resolve_device(device)
    loaded = [load_model(m, dev) for m in models]
    check_members([meta for _, meta in loaded])
    try:
        cfg = training_config(models[0])
    except ModelFileError:
        if split is None:
            raise
        cfg = Config(val_fraction=0.0)  # the model does not say: the dataset named here, as stored
    cfg = cfg.replace(**{k: v for k, v in (("split", split), ("data_dir", data_dir), ("classes", classes))
                         if v is not None})
    data = dataset_for(cfg)
    model_classes = loaded[0][1]["classes"]
    if loaded[0][1].get("reads") == "line":
        return line_model_metrics(loaded, data, cfg, part, tta, dev, precision, models)
    if data.classes != model_classes:
        raise DataError(f"the data's classes {''.join(data.classes)!r} differ from the model's "
                        f"{''.join(model_classes)!r}")
    tensors = {"train": data.train, "val": data.val, "test": data.test}[part]
    if tensors is None:
        raise DataError(f"dataset {data.name} has no {part} part")
    if len(loaded) == 1 and not tta:
        model, meta = loaded[0]
        mean, std = meta["normalize"]["mean"], meta["normalize"]["std"]
    else:  # the wrappers normalise inside, per member: feed them pixels in [0,1]
        model = Ensemble([(m, meta["normalize"]["mean"], meta["normalize"]["std"]) for m, meta in loaded])
        model, mean, std = (ShiftTTA(model) if tta else model), 0.0, 1.0
    metrics = evaluate(model, *tensors, data.classes, mean=mean, std=std, device=dev,
                       precision=resolve_precision(precision, dev), batch_size=eval_batch_size)
    metrics.update(split=part, dataset=data.name, models=[str(m) for m in models], tta=tta)
    return metrics


def line_model_metrics(loaded, data, cfg: Config, part: str, tta: bool, dev, precision: str, models) -> dict:
    """A line model's metrics on lines composed from a part's characters: what its run's metrics.json holds
    (evaluation/lines.py line_metrics; for the test part the same lines as training's own measurement)."""
    from ..data.lines import SPACE
    from .lines import line_metrics
    if len(loaded) > 1 or tta:
        raise ConfigError("ensembles and --tta are for character models; a line model is evaluated alone")
    model, meta = loaded[0]
    if list(data.classes) + [SPACE] != meta["classes"]:
        raise DataError(f"the data's classes {''.join(data.classes)!r} (and the space) differ from the line "
                        f"model's {''.join(meta['classes'])!r}")
    tensors = {"train": data.train, "val": data.val, "test": data.test}[part]
    if tensors is None:
        raise DataError(f"dataset {data.name} has no {part} part")
    metrics = line_metrics(model, tensors, meta["classes"], cfg.seed, meta["normalize"]["mean"],
                           meta["normalize"]["std"], dev, resolve_precision(precision, dev))
    return {**metrics, "split": part, "dataset": data.name, "models": [str(m) for m in models], "reads": "line"}
