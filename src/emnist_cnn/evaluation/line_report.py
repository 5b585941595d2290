"""The HTML report of a line model's run (`emnist-cnn report RUN_DIR` when model.json says it reads lines).

The same page as a character run's (page.py's Page: self-contained, figures also as PNGs, numbers in
report.json), with what a line model has to show: the synthetic lines it learnt from, its training curves
(CTC loss, validation CER), the test CER and exact lines per spacing from metrics.json (written by
training/lines.py), test lines with what it read, and the character substitutions it makes most.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..data import dataset_for
from ..data.lines import SPACINGS, CharacterBank, Spacing, batch_of_lines
from ..errors import ReportError
from ..files import write_json, write_text
from ..models import load_model
from ..runtime import resolve_device, resolve_precision
from .lines import read_synthetic, test_seed
from .page import Page, esc, kv_table, load_run

EXAMPLE_LINES = 8     # test lines shown per spacing
PAIRS_LINES = 1000    # test lines (training's mix) whose substitutions are counted
TOP_PAIRS = 20


def substitutions(truths: list[str], reads: list[str]) -> Counter:
    """(true, read) character pairs of the edits that turn each reading into its truth, case-insensitive; a
    deletion reads as '' and an insertion is true ''."""
    from rapidfuzz.distance import Levenshtein
    pairs: Counter = Counter()
    for t, r in zip(truths, reads):
        t, r = t.lower(), r.lower()
        for op in Levenshtein.editops(r, t):
            if op.tag == "replace":
                pairs[(t[op.dest_pos], r[op.src_pos])] += 1
            elif op.tag == "insert":  # in the truth, missing from the reading
                pairs[(t[op.dest_pos], "")] += 1
            else:
                pairs[("", r[op.src_pos])] += 1
    return pairs


def shown(c: str) -> str:
    return "(none)" if c == "" else "(space)" if c == " " else c


def line_figure(images: list[np.ndarray], captions: list[str], title: str):
    from .figures import plt
    fig, axes = plt.subplots(len(images), 1, figsize=(9, 0.75 * len(images) + 0.4), layout="constrained")
    for ax, image, caption in zip(np.atleast_1d(axes), images, captions):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, aspect="equal")
        ax.set_title(caption, fontsize=8, loc="left")
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    return fig


def kept_epoch(rows: list[dict]) -> int:
    """The epoch whose model train_lines kept: the last of the lowest validation CER (it keeps a tie's later
    model), else the last epoch."""
    if any("val_cer" in r for r in rows):
        return min(reversed(rows), key=lambda r: r.get("val_cer", np.inf))["epoch"]
    return rows[-1]["epoch"] if rows else 0


def write_line_report(run_dir: str | Path, *, device: str = "auto", log=print) -> Path:
    """Write RUN_DIR/report/ (index.html, the PNGs, report.json) for a line model's run: the kept model read on
    the test part's characters composed into lines, as training/lines.py's finish_lines measured it."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    cfg, train_env, rows = load_run(run_dir)
    dev = resolve_device(device)
    precision = resolve_precision(cfg.precision, dev)
    model, meta = load_model(run_dir, dev)
    if meta.get("reads") != "line":
        raise ReportError(f"{run_dir / 'model.json'}: not a line model")
    metrics_path = run_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as err:
        raise ReportError(f"{metrics_path}: unreadable ({err}); a line run writes it when training ends") from None
    data = dataset_for(cfg)
    classes = list(meta["classes"])
    if data.test is None:
        raise ReportError(f"dataset {data.name} has no test part to report on")
    bank = CharacterBank(*data.test, classes)
    mean, std = meta["normalize"]["mean"], meta["normalize"]["std"]
    out_dir = run_dir / "report"
    out_dir.mkdir(exist_ok=True)
    page = Page(out_dir)
    spacings = {"mixed": Spacing(), **SPACINGS}

    train_bank = CharacterBank(*data.train, classes)
    examples = batch_of_lines(train_bank, 8, cfg.seed, 0, training=True)
    page.section("data", "1. Data", (
        f"<p>Lines composed on the fly from the characters of {esc(data.name)} (train part "
        f"{len(data.train[1]):,} characters, held-out validation {0 if data.val is None else len(data.val[1]):,}, "
        f"test {len(data.test[1]):,}): English words, digit strings and mixtures, {len(classes) - 1} classes and "
        "the space between words.</p>"
        + page.figure(line_figure([im[0, :, :int(w)].numpy() for im, w in zip(examples.images, examples.widths)],
                                  [repr(t) for t in examples.texts], "Training lines (the first batch)"),
                      "training_lines", "Synthetic training lines as the model reads them (32 rows).")))

    kept = kept_epoch(rows)
    test_cer = metrics.get("mixed", {}).get("cer")
    body = ""
    if rows:
        from .figures import training_curves
        curves = training_curves(rows, kept, [
            ("CTC loss (per line)", [("train", "train_loss")], None, False),
            ("Character error rate", [("val (greedy)", "val_cer")], None if test_cer is None else ("test", test_cer),
             True)], ("lines_per_second", "lines/s"))
        body += page.figure(curves, "training",
                            f"Per epoch; the star is the kept model (epoch {kept}, lowest validation CER) on test.")
    env = {**train_env, "parameters": f"{meta.get('parameters', 0):,}", "torch (report)": torch.__version__,
           "device (report)": str(dev), "precision (report)": precision}
    body += "<h3>Configuration</h3>" + kv_table(cfg.to_dict()) + "<h3>Environment</h3>" + kv_table(env)
    page.section("training", "2. Training", body)

    table = "".join(f"<tr><td>{esc(name)}</td><td>{metrics[name]['cer']:.4f}</td><td>{metrics[name]['exact']:.3f}"
                    f"</td><td>{metrics[name]['lines']:,}</td></tr>" for name in spacings if name in metrics)
    page.section("results", "3. Results", (
        "<p>The kept model on test lines (test-part characters), greedy decoding, case-insensitive (merged classes "
        "cannot tell the case), from metrics.json. Reading with context (beam search, lexicon, charset) is "
        "measured by <code>benchmarks/read.py</code>.</p><table><thead><tr><th>spacing</th><th>CER</th>"
        f"<th>exact lines</th><th>lines</th></tr></thead><tbody>{table}</tbody></table>"))

    body = ""
    for i, (name, spacing) in enumerate(spacings.items()):
        images, truths, reads = read_synthetic(model, bank, EXAMPLE_LINES, cfg.seed + 3 + i, mean, std, dev, precision,
                                               spacing)
        captions = [f"{t!r} → {r!r}" + ("" if t.lower() == r.lower() else "   ✗") for t, r in zip(truths, reads)]
        body += page.figure(line_figure(images, captions, f"{name} lines"), f"lines_{name}",
                            f"Test lines, {name}: truth → greedy reading (✗: not exact).")
    page.section("examples", "4. Test lines", body)

    _, truths, reads = read_synthetic(model, bank, PAIRS_LINES, test_seed(cfg.seed), mean, std, dev, precision)
    pairs = substitutions(truths, reads).most_common(TOP_PAIRS)
    page.section("errors", "5. Errors", (
        f"<p>The edits that turn the readings of {PAIRS_LINES:,} test lines (the training mix) into their truths, "
        "most frequent first: a substitution, a character read that is not there, or one missed.</p>"
        "<table><thead><tr><th>truth</th><th>read</th><th>count</th></tr></thead><tbody>"
        + "".join(f"<tr><td>{esc(shown(t))}</td><td>{esc(shown(r))}</td><td>{n}</td></tr>" for (t, r), n in pairs)
        + "</tbody></table>"))

    seconds = time.perf_counter() - t0
    write_json(out_dir / "report.json", {
        "reads": "line", "split": "test", "kept_epoch": kept, **{k: metrics[k] for k in spacings if k in metrics},
        "edits": [{"true": t, "read": r, "count": n} for (t, r), n in pairs], "figures": page.figures,
        "seconds": round(seconds, 2)})
    title = f"emnist-cnn report: {run_dir.name}"
    subtitle = (f"{meta['architecture']} ({meta.get('parameters', 0):,} parameters) reading lines of {data.name}; "
                + (f"test CER {test_cer:.4f}; " if test_cer is not None else "")
                + f"generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    index = out_dir / "index.html"
    write_text(index, page.html(title, subtitle))
    log(f"report {index} ({len(page.figures)} figures, {seconds:.1f} s)")
    return index
