"""One evaluate(): training-time validation, `emnist-cnn evaluate` and the report all call it."""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_input(images_u8: torch.Tensor, mean: float, std: float, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×28×28 -> normalised float N×1×28×28 (pixels scaled to [0,1], then (x-mean)/std)."""
    x = images_u8.unsqueeze(1).float().div_(255.0)
    if mean or std != 1.0:
        x = x.sub_(mean).div_(std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


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


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > score of a random negative), ties counting
    half: the Mann-Whitney statistic from average ranks (what sklearn.metrics.roc_auc_score computes)."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # average rank of each run of tied scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor, classes: list[str],
                        with_details: bool = True) -> dict:
    """Accuracy, top-5, macro/weighted P/R/F1, per-class table, confusion matrix, one-vs-rest ROC AUC.

    Plain numpy (the tests check it against scikit-learn): importing sklearn alone costs a second per run.
    """
    y = labels.cpu().numpy()
    pred = logits.argmax(1).numpy()
    k = min(5, logits.shape[1])
    top5 = (logits.topk(k, dim=1).indices == labels.view(-1, 1).cpu()).any(1).float().mean().item()
    out = {"n": int(len(y)), "accuracy": float((pred == y).mean()), "top5_accuracy": float(top5),
           "loss": float(F.cross_entropy(logits, labels.cpu()).item())}
    if not with_details:
        return out
    num_classes = len(classes)
    confusion = np.bincount(y * num_classes + pred, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    tp, support, predicted = np.diag(confusion), confusion.sum(1), confusion.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    weights = support / max(1, support.sum())
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = float(values.mean())
        out[f"{name}_weighted"] = float((values * weights).sum())
    probs = torch.softmax(logits.double(), 1).numpy()
    auc = np.full(num_classes, np.nan)
    for c in range(num_classes):  # one-vs-rest AUC from probabilities (a class needs positives and negatives)
        if 0 < support[c] < len(y):
            auc[c] = roc_auc(y == c, probs[:, c])
    out["roc_auc_macro"] = float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan")
    out["per_class"] = [
        {"class": classes[c], "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
         "support": int(support[c]), "roc_auc": None if np.isnan(auc[c]) else float(auc[c])}
        for c in range(num_classes)]
    out["confusion_matrix"] = confusion.tolist()
    return out


def evaluate(model, images_u8: torch.Tensor, labels: torch.Tensor, classes: list[str], *, mean: float, std: float,
             device: torch.device | str = "cpu", precision: str = "fp32", batch_size: int = 256,
             channels_last: bool = True, with_details: bool = True, return_logits: bool = False):
    """Evaluate model on uint8 images; returns the metrics dict (and the logits if asked)."""
    device = torch.device(device)
    logits = predict_logits(model, images_u8, mean, std, device, precision, batch_size, channels_last)
    metrics = metrics_from_logits(logits, labels, classes, with_details)
    return (metrics, logits) if return_logits else metrics
