"""`emnist-cnn report RUN_DIR`: one self-contained HTML page about a run's data, training and model.

RUN_DIR/report/index.html embeds every figure (no CDN, no request: it opens offline); each figure is also
written as a PNG beside it, and the report's own numbers as report.json. Every metric comes from evaluate()
(the same call that writes metrics.json) or from the probabilities it returns; figures are in figures.py, the
explanations in explain.py, the page itself in page.py. A line model's run gets line_report.py's page.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..config import Config
from ..data import Dataset, dataset_for
from ..errors import ReportError
from ..files import write_json, write_text
from ..models import conv_layers, load_model
from ..models.checkpoint import read_meta
from ..runtime import resolve_device, resolve_precision
from .evaluate import evaluate
from .explain import inspectable, saliency_and_gradcam, strongest_channels
from .metrics import metrics_from_logits
from .page import Page, esc, kv_table, load_run

TOP_PAIRS = 15            # most-confused pairs shown, each with example images
ERRORS_SHOWN = 48         # most confident mistakes in the gallery
ACTIVATION_INPUTS = 4     # inputs whose activation maps are drawn
ATTRIBUTION_PER_GROUP = 8  # correct and wrong predictions explained by saliency and Grad-CAM
SAMPLES_PER_CLASS = 12
CALIBRATION_BINS = 15


# ----------------------------------------------------------------------------------------------- numbers
def calibration(probs: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Reliability per equal-width confidence bin and the expected calibration error
    ECE = sum over bins of (share of predictions in the bin) * |accuracy - mean confidence|."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    safe = np.maximum(count, 1)
    mean_conf = np.bincount(which, confidence, bins) / safe
    accuracy = np.bincount(which, correct.astype(float), bins) / safe
    ece = float((count / max(len(labels), 1) * np.abs(accuracy - mean_conf)).sum())
    return {"ece": ece, "edges": edges, "confidence": mean_conf, "accuracy": accuracy, "count": count}


def one_vs_rest_curves(probs: np.ndarray, labels: np.ndarray, per_class_auc: np.ndarray) -> dict:
    """Per-class ROC and precision-recall curves from the predicted probabilities, with micro and macro averages.
    The per-class and macro ROC AUC are evaluate()'s; the rest derives from the same probabilities."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )
    c = probs.shape[1]
    onehot = labels[:, None] == np.arange(c)[None, :]
    fpr_grid, recall_grid = np.logspace(-5, 0, 300), np.linspace(0, 1, 201)
    roc, pr, ap = [], [], np.full(c, np.nan)
    tpr_sum, prec_sum, n_curves = np.zeros_like(fpr_grid), np.zeros_like(recall_grid), 0
    for k in range(c):
        if not 0 < onehot[:, k].sum() < len(labels):  # a class needs positives and negatives
            roc.append((None, None))
            pr.append((None, None))
            continue
        fpr, tpr, _ = roc_curve(onehot[:, k], probs[:, k])
        precision, recall, _ = precision_recall_curve(onehot[:, k], probs[:, k])
        ap[k] = average_precision_score(onehot[:, k], probs[:, k])
        roc.append((fpr, tpr))
        pr.append((recall, precision))
        tpr_sum += np.interp(fpr_grid, fpr, tpr)
        prec_sum += np.interp(recall_grid, recall[::-1], precision[::-1])
        n_curves += 1
    fpr, tpr, _ = roc_curve(onehot.ravel(), probs.ravel())
    precision, recall, _ = precision_recall_curve(onehot.ravel(), probs.ravel())
    micro_auc = float(roc_auc_score(onehot.ravel(), probs.ravel()))
    micro_ap = float(average_precision_score(onehot.ravel(), probs.ravel()))
    n = max(n_curves, 1)
    return {
        "roc": roc, "pr": pr, "auc": per_class_auc, "ap": ap,
        "roc_averages": {"micro average": (fpr, tpr, micro_auc),
                         "macro average": (fpr_grid, tpr_sum / n, float(np.nanmean(per_class_auc)))},
        "pr_averages": {"micro average": (recall, precision, micro_ap),
                        "macro average": (recall_grid, prec_sum / n, float(np.nanmean(ap)))},
    }


def confused_pairs(cm: np.ndarray, top: int = TOP_PAIRS) -> list[tuple[int, int, int]]:
    """(true, predicted, count) of the largest off-diagonal cells, largest first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None, kind="stable")[::-1][:top]
    return [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0]


# ----------------------------------------------------------------------------------------------- html
def per_class_table(per_class: list[dict], ap: np.ndarray) -> str:
    head = ["class", "precision", "recall", "F1", "support", "ROC AUC", "average precision"]
    rows = []
    for i, r in enumerate(per_class):
        cells = [(i, esc(r["class"])), (r["precision"], f"{r['precision']:.4f}"), (r["recall"], f"{r['recall']:.4f}"),
                 (r["f1"], f"{r['f1']:.4f}"), (r["support"], str(r["support"])),
                 (r["roc_auc"], "–" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"),
                 (None if np.isnan(ap[i]) else ap[i], "–" if np.isnan(ap[i]) else f"{ap[i]:.4f}")]
        rows.append("<tr>" + "".join(f'<td data-value="{"" if v is None else v}">{text}</td>' for v, text in cells)
                    + "</tr>")
    return ('<div class="scroll"><table class="sortable" id="per-class"><thead><tr>'
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows)
            + "</tbody></table></div>")



# ----------------------------------------------------------------------------------------------- the report
@dataclass
class Evaluated:
    """The kept model's predictions on the reported split, as evaluate() returned them."""
    split: str
    classes: list[str]
    metrics: dict
    images: torch.Tensor       # uint8 N×28×28
    labels: np.ndarray
    probs: np.ndarray          # softmax of evaluate()'s logits
    mean: float
    std: float

    def __post_init__(self):
        self.pred, self.confidence = self.probs.argmax(1), self.probs.max(1)
        self.right, self.wrong = np.flatnonzero(self.pred == self.labels), np.flatnonzero(self.pred != self.labels)

    def caption(self, i: int) -> str:
        """true -> predicted, confidence: the caption of one evaluated image."""
        from .figures import label
        return (f"'{label(self.classes[self.labels[i]])}'→'{label(self.classes[self.pred[i]])}' "
                f"{self.confidence[i]:.0%}")


def data_section(page: Page, data: Dataset, rng: np.random.Generator) -> None:
    from . import figures as figs
    parts = {p: t for p, t in (("train", data.train), ("val", data.val), ("test", data.test)) if t is not None}
    c = len(data.classes)
    counts = {p: np.bincount(t[1].numpy(), minlength=c) for p, t in parts.items()}
    hist = {p: np.bincount(t[0][torch.from_numpy(rng.choice(len(t[0]), min(len(t[0]), 20_000), replace=False))]
                           .numpy().ravel(), minlength=256) for p, t in parts.items() if len(t[0])}
    train_x, train_y = data.train[0], data.train[1].numpy()
    samples = [train_x[rng.permutation(np.flatnonzero(train_y == k))[:SAMPLES_PER_CLASS]].numpy() for k in range(c)]
    page.section("data", "1. Data", (
        f"<p>{esc(data.name)}: {c} classes <code>{esc(''.join(data.classes))}</code>; "
        + ", ".join(f"{p} {int(n.sum()):,}" for p, n in counts.items()) + " images.</p>"
        + page.figure(figs.class_distribution(counts, data.classes), "class_distribution",
                      "Images per class in each part.")
        + page.figure(figs.pixel_intensity(hist, train_x[:20_000].float().mean(0).numpy()), "pixel_intensity",
                      "Pixel values (up to 20,000 images per part) and the mean training image.")
        + page.figure(figs.image_rows(samples, [f"'{figs.label(ch)}'" for ch in data.classes], SAMPLES_PER_CLASS,
                                      "Random training samples per class (upright, as the model sees them)"),
                      "samples", "Random training images of every class.")))


def kept_epoch(rows: list[dict]) -> int:
    """The epoch whose model train() kept: the first best validation accuracy, else the last epoch."""
    if any("val_accuracy" in r for r in rows):
        return max(rows, key=lambda r: r.get("val_accuracy", -1))["epoch"]
    return rows[-1]["epoch"] if rows else 0


def training_section(page: Page, ev: Evaluated, cfg: Config, rows: list[dict], env: dict) -> None:
    from . import figures as figs
    body = ""
    if rows:
        epoch = kept_epoch(rows)
        final = ev.metrics
        curves = figs.training_curves(rows, epoch, [
            ("Loss", [("train", "train_loss"), ("val", "val_loss")], (ev.split, final["loss"]), False),
            ("Accuracy", [("train", "train_accuracy"), ("val", "val_accuracy")], (ev.split, final["accuracy"]),
             False)], ("images_per_second", "images/s"))
        body += page.figure(curves, "training",
                            f"Per epoch; the star is the kept model (epoch {epoch}) on {ev.split}.")
    body += "<h3>Configuration</h3>" + kv_table(cfg.to_dict()) + "<h3>Environment</h3>" + kv_table(env)
    page.section("training", "2. Training", body)


def results_section(page: Page, ev: Evaluated, ap: np.ndarray) -> None:
    m = ev.metrics
    cards = {"accuracy": m["accuracy"], "top-5 accuracy": m["top5_accuracy"], "loss": m["loss"]}
    for avg in ("macro", "weighted"):
        cards.update({f"{name} ({avg})": m[f"{key}_{avg}"] for name, key in
                      (("precision", "precision"), ("recall", "recall"), ("F1", "f1"))})
    page.section("results", "3. Results", (
        f"<p>The kept model on <b>{ev.split}</b> ({m['n']:,} images), from <code>evaluate()</code> "
        "(the same call that writes metrics.json).</p><div class=\"cards\">"
        + "".join(f'<div class="card"><b>{v:.4f}</b>{esc(k)}</div>' for k, v in cards.items()) + "</div>"
        + "<h3>Per class</h3><p class=\"muted\">Click a column header to sort.</p>"
        + per_class_table(m["per_class"], ap)))


def confusion_section(page: Page, ev: Evaluated, pairs: list[tuple[int, int, int]]) -> None:
    from . import figures as figs
    cm = np.asarray(ev.metrics["confusion_matrix"])
    body = (page.figure(figs.confusion(cm, ev.classes, normalized=False), "confusion_counts",
                        "Rows: true class, columns: predicted class.")
            + page.figure(figs.confusion(cm, ev.classes, normalized=True), "confusion_normalized",
                          "Each row divided by its class's support: the diagonal is the recall."))
    if pairs:
        examples = [ev.images[torch.from_numpy((ev.labels == t) & (ev.pred == p))][:10].numpy() for t, p, _ in pairs]
        names = [f"'{figs.label(ev.classes[t])}' → '{figs.label(ev.classes[p])}'  {n}" for t, p, n in pairs]
        body += page.figure(figs.image_rows(examples, names, 10, f"The {len(pairs)} most-confused pairs: "
                                            "true → predicted, count, examples"),
                            "confused_pairs", "Most frequent confusions with up to 10 of their images.")
    else:
        body += "<p>No confusions: every image is classified correctly.</p>"
    page.section("confusion", "4. Confusion matrix", body)


def curves_section(page: Page, ev: Evaluated, curves: dict) -> None:
    from . import figures as figs
    page.section("roc", "5. ROC and precision-recall", (
        page.figure(figs.one_vs_rest(curves["roc"], curves["auc"], ev.classes, curves["roc_averages"], "roc"),
                    "roc", "One-vs-rest ROC from the predicted probabilities; the five lowest-AUC classes in "
                           "colour. Macro AUC is the mean of the per-class AUCs.")
        + page.figure(figs.one_vs_rest(curves["pr"], curves["ap"], ev.classes, curves["pr_averages"], "pr"),
                      "pr", "One-vs-rest precision-recall; the five lowest average-precision classes in colour.")))


def calibration_section(page: Page, cal: dict) -> None:
    from . import figures as figs
    page.section("calibration", "6. Calibration", (
        f"<p>Expected calibration error ({len(cal['count'])} equal-width bins): <b>{cal['ece']:.4f}</b>.</p>"
        + page.figure(figs.reliability(cal["confidence"], cal["accuracy"], cal["count"], cal["edges"], cal["ece"]),
                      "calibration", "Bars below the diagonal: the model is over-confident there.")))


def errors_section(page: Page, ev: Evaluated) -> None:
    from . import figures as figs
    shown = ev.wrong[np.argsort(-ev.confidence[ev.wrong], kind="stable")][:ERRORS_SHOWN]
    body = "<p>No misclassified images.</p>"
    if len(shown):
        body = page.figure(figs.image_grid([ev.images[i].numpy() for i in shown], [ev.caption(i) for i in shown],
                                           8, "Misclassified: true → predicted, confidence; most confident first"),
                           "errors", f"{len(ev.wrong):,} of {len(ev.labels):,} images are misclassified; the "
                                     f"{len(shown)} most confident mistakes.")
    page.section("errors", "7. Errors", body)


def network_section(page: Page, ev: Evaluated, model: torch.nn.Module, rng: np.random.Generator) -> None:
    """Activation maps, first-layer filters, saliency and Grad-CAM: a small subsample on a CPU copy."""
    from . import figures as figs
    net = inspectable(model)
    chosen = []  # a correctly classified image (if any) of a few classes spread over the alphabet
    for k in np.linspace(0, len(ev.classes) - 1, ACTIVATION_INPUTS).round().astype(int):
        right_k = ev.right[ev.labels[ev.right] == k]
        pool = right_k if len(right_k) else np.flatnonzero(ev.labels == k)
        if len(pool):
            chosen.append(int(rng.choice(pool)))
    inputs = [ev.images[i].numpy() for i in chosen]
    body = ""
    for name, (maps, channels, total) in strongest_channels(net, ev.images[chosen], ev.mean, ev.std).items():
        k = maps.shape[1]
        body += page.figure(
            figs.activation_maps(inputs, [ev.caption(i) for i in chosen], maps, channels, name, total),
            f"activations_{name.replace('.', '_')}", f"Output of convolution layer {name} (before its "
            f"non-linearity): " + (f"all {total} channels." if k == total else
                                   f"the {k} strongest of {total} channels for each input."))
    first_name, first = conv_layers(net)[0]
    body += page.figure(figs.filters(first.weight.detach().numpy(), first_name), "filters",
                        "Weights of every first-layer filter.")
    groups = []
    for group, pool in (("correct", ev.right), ("wrong", ev.wrong)):
        if len(pool):
            pick = np.sort(rng.choice(pool, min(ATTRIBUTION_PER_GROUP, len(pool)), replace=False))
            saliency, cams = saliency_and_gradcam(net, ev.images[pick], ev.mean, ev.std)
            groups.append((group, [ev.images[i].numpy() for i in pick], list(saliency), list(cams),
                           [ev.caption(i) for i in pick]))
    body += page.figure(figs.attributions(groups), "attribution",
                        "Saliency (SmoothGrad): gradient magnitude of the predicted class's logit per pixel, "
                        "averaged over 16 noisy copies. Grad-CAM: the last "
                        "convolution's channels weighted by their mean gradient, upsampled.")
    page.section("network", "8. Inside the network", body)


def write_report(run_dir: str | Path, split: str | None = None, *, data: Dataset | None = None,
                 device: str = "auto", log=print, logits: torch.Tensor | None = None) -> Path:
    """Write RUN_DIR/report/ (index.html, the PNGs, report.json) for the kept model on `split`
    (default: test, else val); returns the path of index.html. `data` skips rebuilding the dataset, and `logits`
    (the kept model's on the default split, as training's final evaluation computed them) skips the evaluation.
    A line model's run gets line_report's page."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if (run_dir / "model.json").is_file() and read_meta(run_dir).get("reads") == "line":
        if split not in (None, "test"):
            raise ReportError(f"--split {split!r}: a line model's report reads lines of the test part's characters")
        from .line_report import write_line_report
        return write_line_report(run_dir, device=device, log=log)
    cfg, train_env, rows = load_run(run_dir)
    dev = resolve_device(device)
    precision = resolve_precision(cfg.precision, dev)
    model, meta = load_model(run_dir, dev)
    data = data or dataset_for(cfg)
    if data.classes != meta["classes"]:
        raise ReportError(f"{run_dir / 'model.json'}: the model's classes {''.join(meta['classes'])!r} differ "
                          f"from the data's {''.join(data.classes)!r}")
    parts = {"train": data.train, "val": data.val, "test": data.test}
    default_split = "test" if data.test is not None else "val"
    split = split or default_split
    if split not in parts:
        raise ReportError(f"--split {split!r}: expected train, val or test")
    if parts[split] is None:
        raise ReportError(f"dataset {data.name} has no {split} part to report on")
    images, labels = parts[split]
    mean, std = meta["normalize"]["mean"], meta["normalize"]["std"]
    if logits is not None and split == default_split:
        metrics = metrics_from_logits(logits, labels, data.classes)
    else:
        metrics, logits = evaluate(model, images, labels, data.classes, mean=mean, std=std, device=dev,
                                   precision=precision, batch_size=cfg.eval_batch_size,
                                   channels_last=cfg.channels_last, return_logits=True)
    ev = Evaluated(split, data.classes, metrics, images, labels.numpy(),
                   torch.softmax(logits, 1).numpy().astype(np.float64), mean, std)
    per_class_auc = np.array([np.nan if r["roc_auc"] is None else r["roc_auc"] for r in metrics["per_class"]])
    curves = one_vs_rest_curves(ev.probs, ev.labels, per_class_auc)
    cal = calibration(ev.probs, ev.labels)
    pairs = confused_pairs(np.asarray(metrics["confusion_matrix"]))
    env = {**train_env, "parameters": f"{meta.get('parameters', 0):,}", "torch (report)": torch.__version__,
           "device (report)": str(dev), "precision (report)": precision}

    out_dir = run_dir / "report"
    out_dir.mkdir(exist_ok=True)
    page, rng = Page(out_dir), np.random.default_rng(0)
    data_section(page, data, rng)
    training_section(page, ev, cfg, rows, env)
    results_section(page, ev, curves["ap"])
    confusion_section(page, ev, pairs)
    curves_section(page, ev, curves)
    calibration_section(page, cal)
    errors_section(page, ev)
    network_section(page, ev, model, rng)

    seconds = time.perf_counter() - t0
    summary = {k: metrics[k] for k in ("n", "accuracy", "top5_accuracy", "loss", "precision_macro", "recall_macro",
                                       "f1_macro", "precision_weighted", "recall_weighted", "f1_weighted",
                                       "roc_auc_macro")}
    summary.update(split=split, ece=cal["ece"], roc_auc_micro=curves["roc_averages"]["micro average"][2],
                   average_precision_micro=curves["pr_averages"]["micro average"][2],
                   average_precision_macro=curves["pr_averages"]["macro average"][2],
                   confused_pairs=[{"true": data.classes[t], "predicted": data.classes[p], "count": n}
                                   for t, p, n in pairs],
                   kept_epoch=kept_epoch(rows), figures=page.figures, seconds=round(seconds, 2))
    write_json(out_dir / "report.json", summary)
    title = f"emnist-cnn report: {run_dir.name}"
    subtitle = (f"{meta['architecture']} ({meta.get('parameters', 0):,} parameters) on {data.name}; {split} "
                f"accuracy {metrics['accuracy']:.4f}; generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    index = out_dir / "index.html"
    write_text(index, page.html(title, subtitle))
    log(f"report {index} ({len(page.figures)} figures, {seconds:.1f} s)")
    return index
