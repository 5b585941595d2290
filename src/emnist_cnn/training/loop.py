"""Training: data resident on the device as uint8, batches by indexing, whole-batch augmentation, one loop.

A run directory holds config.json, metrics.jsonl (one line per epoch), model.safetensors + model.json (best
validation accuracy), last.pt (for --resume) and metrics.json (test metrics of the kept model). The report is the
caller's: `emnist-cnn train` writes it after training (evaluation.write_report).
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config import Config
from ..data import Dataset, dataset_for, normalize, resolve_split
from ..data.augment import random_affine, random_erase
from ..errors import ConfigError, ModelFileError, RunError
from ..evaluation.evaluate import evaluate
from ..files import read_jsonl, write_json, write_jsonl
from ..models import count_parameters, create_model, load_model
from ..models.checkpoint import load_training_state, save_model, save_training_state
from ..models.registry import reads
from ..runtime import autocast, environment, resolve_device, resolve_precision
from . import distributed
from .optim import EMA, lr_factor, make_optimizer
from .tensorboard import TensorBoardLog
from .transfer import init_architecture, init_from


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch's randomness (shuffle, augmentation, dropout) derives from (seed, epoch): resume is exact."""
    return seed * 1_000_003 + epoch


# ----------------------------------------------------------------------------------------------- one epoch
def augment_batch(cfg: Config, x_u8: torch.Tensor, generator: torch.Generator | None, channels_last: bool):
    """uint8 N×28×28 on the device -> augmented, normalised float N×1×28×28."""
    x = x_u8.unsqueeze(1).float().div_(255.0)
    x = random_affine(x, cfg.rotate, cfg.shear, cfg.scale, cfg.translate, cfg.interpolation, generator,
                      cfg.elastic)
    x = random_erase(x, cfg.erase, generator)
    x = normalize(x, cfg.normalize_mean, cfg.normalize_std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_one_epoch(cfg: Config, model, optimizer, scheduler, images, labels, epoch: int, precision: str,
                    ema: EMA | None = None, progress: bool = True) -> dict:
    """One pass over a fresh permutation; loss and accuracy accumulate on the device (no per-step sync).

    Under torchrun each rank trains on its share of every global batch of cfg.batch_size images.
    """
    from tqdm import tqdm
    device = images.device
    seed = epoch_seed(cfg.seed, epoch)
    torch.manual_seed(seed)  # dropout
    gen = torch.Generator(device=device).manual_seed(seed)
    n = len(labels)
    perm = torch.randperm(n, device=device, generator=gen)  # the same on every rank
    distributed.decorrelate(seed, gen)
    steps = math.ceil(n / cfg.batch_size)
    if epoch + 1 > cfg.epochs:  # a fractional last epoch
        steps = max(1, round(steps * (cfg.epochs - epoch)))
    images_this_epoch = min(n, steps * cfg.batch_size)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{math.ceil(cfg.epochs)}", disable=not progress, leave=False,
               unit="batch", mininterval=1.0)
    for i in bar:
        batch = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
        idx = distributed.shard(batch)
        x = augment_batch(cfg, images[idx], gen, cfg.channels_last)
        y = labels[idx]
        with autocast(device, precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing, reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks, so this is the mean over the global batch (however it splits).
        (loss * (distributed.world_size() / len(batch))).backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if progress and i % 100 == 99:  # one sync per 100 steps, for the progress bar only
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}",
                            img_s=f"{seen / (time.perf_counter() - start):.0f}")
    distributed.all_sum(loss_sum, correct)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"train_loss": loss_sum.item() / images_this_epoch, "train_accuracy": correct.item() / images_this_epoch,
            "train_seconds": seconds, "images_per_second": images_this_epoch / seconds}


# ----------------------------------------------------------------------------------------------- the run
def new_run_dir(cfg: Config) -> Path:
    """A new directory under cfg.out_dir, made atomically: runs started at the same instant each get their own
    (mkdir fails for all but one of them, and the others take the next suffix)."""
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {cfg.out_dir!r}: exists and is not a directory")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = out / f"{cfg.preset or cfg.architecture}-{stamp}"
    for k in range(10_000):
        run_dir = base if k == 0 else Path(f"{base}-{k}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"out_dir {cfg.out_dir!r}: cannot create a run directory there ({e})") from None
    raise ConfigError(f"out_dir {cfg.out_dir!r}: no free run directory name for {base.name}")


def read_rows(path: Path) -> list[dict]:
    """metrics.jsonl's rows; a torn last line is dropped (files.read_jsonl), so that its epoch is trained again."""
    try:
        return read_jsonl(path)
    except FileNotFoundError:
        raise RunError(f"{path}: missing, so the run cannot be resumed (it holds the epochs trained so far)") \
            from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunError(f"{path}: unreadable ({e})") from None
    except ValueError as e:  # a damaged line before the last: the message names file and line
        raise RunError(str(e)) from None


def resume_state(run_dir: Path) -> tuple[Config, dict]:
    """The recorded config and last.pt of a run to resume, or an error that names the missing or damaged file."""
    if not run_dir.is_dir():
        raise RunError(f"--resume {run_dir}: no such run directory")
    if not (run_dir / "config.json").is_file():
        raise RunError(f"{run_dir / 'config.json'}: missing; {run_dir} is not a run directory")
    cfg = Config.from_json(run_dir / "config.json")
    if reads(cfg.architecture) == "line":
        raise RunError(f"{run_dir}: a line model's run cannot be resumed (it keeps no last.pt); train it again")
    if not (run_dir / "last.pt").is_file():
        raise RunError(f"{run_dir / 'last.pt'}: missing; the run ended before its first epoch, or was finished "
                       f"elsewhere: start it again")
    state = load_training_state(run_dir / "last.pt")
    missing = sorted({"model", "optimizer", "scheduler", "ema", "rng", "epoch", "best_val"} - set(state))
    if missing:
        raise ModelFileError(f"{run_dir / 'last.pt'}: not a training state of emnist-cnn (no {', '.join(missing)})")
    return cfg, state


def model_meta(cfg: Config, data: Dataset, env: dict, num_parameters: int) -> dict:
    return {"architecture": cfg.architecture, "model_args": {"dropout": cfg.dropout},
            "classes": data.classes, "normalize": {"mean": cfg.normalize_mean, "std": cfg.normalize_std},
            "dataset": data.describe(), "preset": cfg.preset, "parameters": num_parameters,
            "git_revision": env["git_revision"], "torch": env["torch"], "config": cfg.to_dict()}


def train(cfg: Config, *, resume: str | Path | None = None, data: Dataset | None = None,
          progress: bool = True, log=print) -> Path:
    """Train per cfg (or continue the run in `resume`); returns the run directory."""
    if resume is None:
        cfg = init_architecture(cfg)
    if resume is None and reads(cfg.architecture) == "line":
        from .lines import train_lines
        return train_lines(cfg, data=data, progress=progress, log=log, new_run_dir=new_run_dir)
    if resume is not None:
        run_dir = Path(resume)
        cfg, state = resume_state(run_dir)
        rows = read_rows(run_dir / "metrics.jsonl")
    device = distributed.setup(resolve_device(cfg.device))  # under torchrun: join the job, one GPU per rank
    if not distributed.is_main():
        log, progress = (lambda *a, **k: None), False
    precision = resolve_precision(cfg.precision, device)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    t0 = time.perf_counter()
    cfg = resolve_split(cfg)
    data = data or dataset_for(cfg)
    load_seconds = time.perf_counter() - t0
    if cfg.init:
        cfg, model = init_from(cfg, data.classes, log)
    else:
        model = create_model(cfg.architecture, len(data.classes), dropout=cfg.dropout)
    model = model.to(device, memory_format=torch.channels_last if cfg.channels_last else torch.contiguous_format)
    step_model = distributed.wrap(model, device, log)
    optimizer = make_optimizer(cfg, model, device)
    images, labels = (t.to(device) for t in data.train)
    steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, steps_per_epoch))
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    step_model = torch.compile(step_model) if cfg.compile else step_model
    env = environment(device, precision)
    meta = model_meta(cfg, data, env, count_parameters(model))

    board = TensorBoardLog() if cfg.tensorboard and distributed.is_main() else None
    start_epoch, best_val = 0, -1.0
    if resume is None:
        rows = []
        run_dir = distributed.from_main(lambda: new_run_dir(cfg))  # only rank 0 writes, below too
        if distributed.is_main():
            write_json(run_dir / "config.json", {**cfg.to_dict(), "_environment": env})
    else:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if ema is not None:
                ema.model.load_state_dict(state["ema"])
            torch.set_rng_state(state["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise ModelFileError(f"{run_dir / 'last.pt'}: does not fit this run's model and optimiser "
                                 f"({str(e).splitlines()[0]})") from None
        start_epoch, best_val = state["epoch"], state["best_val"]
        rows = [r for r in rows if r.get("epoch", 0) <= start_epoch]  # epochs after the checkpoint are redone
        if distributed.is_main():
            write_jsonl(run_dir / "metrics.jsonl", rows)
        log(f"resuming {run_dir} after epoch {start_epoch}")
    log(f"run {run_dir}: {data.name} ({len(labels)} train), {cfg.architecture} "
        f"({meta['parameters']:,} parameters), {device} {precision}")

    eval_model = ema.model if ema is not None else model
    if board is not None:
        board.start(run_dir, eval_model)
    evaluate_kw = dict(mean=cfg.normalize_mean, std=cfg.normalize_std, device=device, precision=precision,
                       batch_size=cfg.eval_batch_size, channels_last=cfg.channels_last)
    for epoch in range(start_epoch, math.ceil(cfg.epochs)):
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        row.update(train_one_epoch(cfg, step_model, optimizer, scheduler, images, labels, epoch, precision, ema,
                                   progress))
        last = epoch + 1 >= cfg.epochs
        # every rank validates (their weights are identical); rank 0 alone writes
        if data.val is not None and cfg.val_every > 0 and ((epoch + 1) % cfg.val_every == 0 or last):
            val = evaluate(eval_model, *data.val, data.classes, with_details=False, **evaluate_kw)
            row.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
        # the best validated epoch is kept; without validation, the latest epoch
        score = row.get("val_accuracy", -1.0 if cfg.val_every and data.val is not None else epoch)
        improved = score > best_val
        if improved:
            best_val = score
            if distributed.is_main():
                save_model(run_dir, eval_model, meta)
        row["elapsed_seconds"] = time.perf_counter() - t0
        rows.append(row)
        if distributed.is_main():
            write_jsonl(run_dir / "metrics.jsonl", rows)
            save_training_state(run_dir / "last.pt", {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "ema": ema.model.state_dict() if ema is not None else {}, "rng": torch.get_rng_state(),
                "epoch": epoch + 1, "best_val": best_val})
        if board is not None:
            board.epoch(row)
        log(f"epoch {epoch + 1}/{math.ceil(cfg.epochs)} loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f} "
            + (f"val {row['val_accuracy']:.4f} " if "val_accuracy" in row else "")
            + f"{row['images_per_second']:.0f} img/s" + (" *" if improved else ""))
        reached = cfg.target_accuracy and row.get("val_accuracy", 0) >= cfg.target_accuracy
        if distributed.from_main(lambda: bool(reached)):  # all ranks stop together
            log(f"target validation accuracy {cfg.target_accuracy} reached")
            break

    if distributed.is_main():
        finish(run_dir, data, device, precision, cfg, load_seconds, log)
    if board is not None:
        board.finish()
    del step_model  # DDP's reducer holds gloo work: it must go before its process group does
    distributed.teardown()
    return run_dir


def finish(run_dir: Path, data: Dataset, device, precision: str, cfg: Config, load_seconds: float,
           log=print) -> None:
    """Evaluate the kept model on the test set (or validation without one) and write metrics.json."""
    model, meta = load_model(run_dir, device)
    split_name, part = ("test", data.test) if data.test is not None else ("val", data.val)
    metrics = {"data_load_seconds": load_seconds}
    if part is not None:
        evaluated = evaluate(model, *part, data.classes, mean=cfg.normalize_mean, std=cfg.normalize_std,
                             device=device, precision=precision, batch_size=cfg.eval_batch_size,
                             channels_last=cfg.channels_last)
        metrics.update(evaluated)
        metrics["split"] = split_name
        meta[f"{split_name}_accuracy"] = metrics["accuracy"]
        write_json(run_dir / "model.json", meta)
        log(f"{split_name} accuracy {metrics['accuracy']:.4f} (top-5 {metrics['top5_accuracy']:.4f}, "
            f"macro F1 {metrics['f1_macro']:.4f}) -> {run_dir}")
    write_json(run_dir / "metrics.json", metrics)
