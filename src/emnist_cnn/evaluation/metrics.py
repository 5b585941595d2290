"""Metrics from logits: accuracy, top-5, macro/weighted precision, recall and F1, the per-class table, the
confusion matrix and one-vs-rest ROC AUC. Plain numpy (the tests check it against scikit-learn): importing sklearn
alone costs a second per run."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


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
    """Accuracy, top-5 and loss; with details also P/R/F1, the per-class table, the confusion matrix and AUC."""
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
    probs = torch.softmax(logits.float(), 1).numpy()  # as the report draws them (float32: ties stay ties)
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
