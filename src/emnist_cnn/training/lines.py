"""Training a line model (models/line_models.py) with CTC on synthetic lines (data/lines.py).

The lines are composed on the fly from the characters of the corpus's train part (its validation share held out
for validation lines); the test part's characters make the test lines. An epoch is as many lines as the train
part has characters / CHARS_PER_LINE, so that each character is drawn about once per epoch. The run directory
holds what a character run's does: config.json, metrics.jsonl, model.safetensors + model.json, metrics.json.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import Config
from ..data import Dataset, dataset_for, normalize, resolve_split
from ..data.lines import LINE_HEIGHT, SPACE, SPACINGS, CharacterBank, batch_of_lines
from ..errors import ConfigError
from ..evaluation.lines import CHARS_PER_LINE, evaluate_lines, line_metrics, lines_for
from ..files import write_json, write_jsonl
from ..models import count_parameters, create_model, load_model
from ..models.checkpoint import save_model
from ..runtime import autocast, environment, resolve_device, resolve_precision
from .optim import EMA, lr_factor, make_optimizer
from .transfer import init_from

VAL_LINES = 512       # validation lines per epoch at most (from the train part's held-out characters)


def ctc_loss(log_probs: torch.Tensor, widths: torch.Tensor, targets: list[list[int]], blank: int,
             stride: int) -> torch.Tensor:
    """Mean CTC loss per line: log_probs N×T×(C+1); each line's steps are its own width / stride."""
    lengths = (widths // stride).clamp(min=1, max=log_probs.shape[1])
    flat = torch.tensor([k for t in targets for k in t], dtype=torch.long)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    return F.ctc_loss(log_probs.transpose(0, 1), flat, lengths, target_lengths, blank=blank,
                      reduction="mean", zero_infinity=True)


def train_lines_one_epoch(cfg: Config, model, optimizer, scheduler, ema, bank: CharacterBank, steps: range,
                          precision: str, progress: bool = True, desc: str = "") -> dict:
    """One epoch of CTC training on the synthetic lines of `steps`; the epoch's training figures."""
    from tqdm import tqdm
    device = next(model.parameters()).device
    blank = len(bank.classes)
    model.train()
    start, loss_sum, lines = time.perf_counter(), 0.0, 0
    for step in tqdm(steps, desc=desc, disable=not progress, leave=False, unit="batch", mininterval=1.0):
        batch = batch_of_lines(bank, cfg.batch_size, cfg.seed, step, training=True)
        x = normalize(batch.images.to(device), cfg.normalize_mean, cfg.normalize_std)
        with autocast(device, precision):
            out = model(x.contiguous(memory_format=torch.channels_last))
        loss = ctc_loss(out.float().log_softmax(-1), batch.widths, batch.targets, blank, model.stride)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)  # CTC's early steps spike
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        loss_sum += float(loss.detach()) * len(batch.texts)
        lines += len(batch.texts)
    seconds = time.perf_counter() - start
    return {"train_loss": loss_sum / max(lines, 1), "train_seconds": seconds, "lines_per_second": lines / seconds}


def line_meta(cfg: Config, data: Dataset, classes: list[str], env: dict, parameters: int) -> dict:
    return {"architecture": cfg.architecture, "model_args": {"dropout": cfg.dropout}, "reads": "line",
            "height": LINE_HEIGHT, "classes": classes,
            "normalize": {"mean": cfg.normalize_mean, "std": cfg.normalize_std},
            "dataset": data.describe(), "preset": cfg.preset, "parameters": parameters,
            "git_revision": env["git_revision"], "torch": env["torch"], "config": cfg.to_dict()}


def train_lines(cfg: Config, *, new_run_dir, data: Dataset | None = None, progress: bool = True,
                log=print) -> Path:
    """Train a line model per cfg; returns the run directory (made by new_run_dir(cfg): loop.train's, which
    calls this for a line architecture)."""
    if resolve_split(cfg).split == "folder":
        raise ConfigError(f"architecture {cfg.architecture!r} reads lines: it trains on an EMNIST split's "
                          f"characters composed into lines, not on an image folder")
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    data = data or dataset_for(cfg)
    classes = list(data.classes) + [SPACE]
    train_bank = CharacterBank(*data.train, classes)
    val_bank = CharacterBank(*data.val, classes) if data.val is not None else None
    load_seconds = time.perf_counter() - t0
    if cfg.init:
        cfg, model = init_from(cfg, classes, log)
    else:
        model = create_model(cfg.architecture, len(classes), dropout=cfg.dropout)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model, device)
    steps_per_epoch = math.ceil(len(data.train[1]) / CHARS_PER_LINE / cfg.batch_size)
    total_steps = max(1, round(cfg.epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, steps_per_epoch))
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    env = environment(device, precision)
    meta = line_meta(cfg, data, classes, env, count_parameters(model))
    run_dir = new_run_dir(cfg)
    write_json(run_dir / "config.json", {**cfg.to_dict(), "_environment": env})
    log(f"run {run_dir}: lines of {data.name} characters ({len(data.train[1])} train), {cfg.architecture} "
        f"({meta['parameters']:,} parameters), {device} {precision}, {total_steps} steps of {cfg.batch_size} lines")
    eval_model = ema.model if ema is not None else model
    rows, best = [], math.inf
    for epoch in range(math.ceil(cfg.epochs)):
        first = epoch * steps_per_epoch  # batches are a function of (seed, step): an epoch is a range of steps
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row.update(train_lines_one_epoch(cfg, model, optimizer, scheduler, ema, train_bank, range(
            first, min(first + steps_per_epoch, total_steps)), precision, progress, f"epoch {epoch + 1}/"
            f"{math.ceil(cfg.epochs)}"))
        if val_bank is not None and cfg.val_every > 0:
            val = evaluate_lines(eval_model, val_bank, lines_for(len(data.val[1]), VAL_LINES), cfg.seed + 1,
                                 cfg.normalize_mean, cfg.normalize_std, device, precision)
            row.update(val_cer=val["cer"], val_exact=val["exact"])
        score = row.get("val_cer", -epoch)  # without validation lines: the latest epoch is kept
        if score <= best:
            best = score
            save_model(run_dir, eval_model, meta)
        row["elapsed_seconds"] = time.perf_counter() - t0
        rows.append(row)
        write_jsonl(run_dir / "metrics.jsonl", rows)
        log(f"epoch {epoch + 1}/{math.ceil(cfg.epochs)} loss {row['train_loss']:.4f} "
            + (f"val CER {row['val_cer']:.4f} exact {row['val_exact']:.3f} " if "val_cer" in row else "")
            + f"{row['lines_per_second']:.0f} lines/s")
    finish_lines(run_dir, data, classes, cfg, device, precision, load_seconds, log)
    return run_dir


def finish_lines(run_dir: Path, data: Dataset, classes: list[str], cfg: Config, device, precision: str,
                 load_seconds: float, log=print) -> None:
    """Greedy CER of the kept model on test-part lines, per spacing (the benchmark's three and the training
    range), into metrics.json and model.json."""
    model, meta = load_model(run_dir, device)
    metrics: dict = {"data_load_seconds": load_seconds}
    if data.test is not None:
        metrics.update(line_metrics(model, data.test, classes, cfg.seed, cfg.normalize_mean, cfg.normalize_std,
                                    device, precision))
        metrics["split"] = "test"
        meta["test_cer"] = metrics["mixed"]["cer"]
        write_json(run_dir / "model.json", meta)
        log("test CER " + ", ".join(f"{k} {metrics[k]['cer']:.4f}" for k in ("mixed", *SPACINGS))
            + f" -> {run_dir}")
    write_json(run_dir / "metrics.json", metrics)
