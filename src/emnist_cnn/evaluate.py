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
                   precision: str = "fp32", batch_size: int = 1024, channels_last: bool = False) -> torch.Tensor:
    """Logits (float32, on the CPU) for a uint8 image tensor, in large batches."""
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images_u8), batch_size):
        x = to_input(images_u8[i:i + batch_size].to(device, non_blocking=True), mean, std, channels_last)
        with autocast(device, precision):
            out.append(model(x).float())
    model.train(was_training)
    return torch.cat(out).cpu() if out else torch.empty(0)


def metrics_from_logits(logits: torch.Tensor, labels: torch.Tensor, classes: list[str],
                        with_details: bool = True) -> dict:
    """Accuracy, top-5, macro/weighted P/R/F1, per-class table, confusion matrix, one-vs-rest ROC AUC."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score
    y = labels.cpu().numpy()
    pred = logits.argmax(1).numpy()
    k = min(5, logits.shape[1])
    top5 = (logits.topk(k, dim=1).indices == labels.view(-1, 1).cpu()).any(1).float().mean().item()
    out = {"n": int(len(y)), "accuracy": float((pred == y).mean()), "top5_accuracy": float(top5),
           "loss": float(F.cross_entropy(logits, labels.cpu()).item())}
    if not with_details:
        return out
    num_classes = len(classes)
    labels_range = list(range(num_classes))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=labels_range, average=avg, zero_division=0)
        out.update({f"precision_{avg}": float(p), f"recall_{avg}": float(r), f"f1_{avg}": float(f)})
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels_range, zero_division=0)
    probs = torch.softmax(logits, 1).numpy().astype(np.float64)
    present = np.unique(y)
    auc = np.full(num_classes, np.nan)
    for c in present:  # one-vs-rest AUC from probabilities (a class needs positives and negatives)
        if 0 < (y == c).sum() < len(y):
            auc[c] = roc_auc_score(y == c, probs[:, c])
    out["roc_auc_macro"] = float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan")
    out["per_class"] = [
        {"class": classes[c], "precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]),
         "support": int(s[c]), "roc_auc": None if np.isnan(auc[c]) else float(auc[c])} for c in labels_range]
    out["confusion_matrix"] = confusion_matrix(y, pred, labels=labels_range).tolist()
    return out


def evaluate(model, images_u8: torch.Tensor, labels: torch.Tensor, classes: list[str], *, mean: float, std: float,
             device: torch.device | str = "cpu", precision: str = "fp32", batch_size: int = 1024,
             channels_last: bool = False, with_details: bool = True, return_logits: bool = False):
    """Evaluate model on uint8 images; returns the metrics dict (and the logits if asked)."""
    device = torch.device(device)
    logits = predict_logits(model, images_u8, mean, std, device, precision, batch_size, channels_last)
    metrics = metrics_from_logits(logits, labels, classes, with_details)
    return (metrics, logits) if return_logits else metrics
