"""Training configuration: one frozen dataclass, validated when it is made, and presets that are just named
instances of it. The comment beside each field is its documentation: `emnist-cnn train --help` shows it."""
from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from dataclasses import dataclass, fields

from .errors import ConfigError

# The values a field may take, where there is a fixed set (validated here, listed by --help).
CHOICES = {
    "optimizer": ("adam", "adamw", "sgd"),
    "scheduler": ("step", "onecycle", "cosine", "none"),
    "interpolation": ("bilinear", "nearest"),
    "precision": ("fp32", "bf16", "auto"),
}
# Ranges as (low, high, high included); a missing bound is None. Everything numeric is also checked finite.
RANGES = {
    "val_fraction": (0.0, 1.0, False), "dropout": (0.0, 1.0, False), "freeze": (0, None, True),
    "epochs": (0.0, None, True), "batch_size": (1, None, True), "lr": (0.0, None, True),
    "weight_decay": (0.0, None, True), "momentum": (0.0, 1.0, False), "step_size": (1, None, True),
    "gamma": (0.0, 1.0, True), "warmup_epochs": (0.0, None, True), "label_smoothing": (0.0, 1.0, False),
    "ema_decay": (0.0, 1.0, False), "normalize_std": (0.0, None, True), "rotate": (0.0, 180.0, True),
    "shear": (0.0, 89.0, True), "scale": (0.0, 1.0, False), "translate": (0.0, 1.0, False),
    "elastic": (0.0, 1.0, False), "erase": (0.0, 1.0, True), "eval_batch_size": (1, None, True),
    "val_every": (0, None, True), "seed": (0, None, True), "target_accuracy": (0.0, 1.0, True),
}
POSITIVE = {"epochs", "lr", "normalize_std", "gamma"}  # strictly above their low bound


@dataclass(frozen=True)
class Config:
    # --- data ---
    split: str = "balanced"          # EMNIST split name (byclass, balanced, localdigits, ...) or "folder"
    data_dir: str = ""               # directories to search (":"-separated); "" = $EMNIST_DATA_DIR, then the cache
    classes: str = ""                # class subset, e.g. "0-35" or "0-9,36"; "" = all classes
    resplit: str = ""                # pool train+test and split stratified by these ratios, e.g. "0.7,0.2,0.1"
    val_fraction: float = 0.1        # without resplit: stratified share of train held out for validation
    # --- model ---
    architecture: str = "cnn3"       # a name from `emnist-cnn models` (emnist_cnn.list_models())
    dropout: float = 0.5             # used by models that have dropout (cnn3)
    init: str = ""                   # fine-tune from this model (run dir, model dir or pretrained name)
    freeze: int = 0                  # with init: keep the first N feature stages (conv + norm, or a block) fixed
    # --- optimisation ---
    epochs: float = 20               # passes over the training set; a fraction shortens the last one
    batch_size: int = 64             # training images per optimiser step (the global batch under torchrun)
    optimizer: str = "adam"          # adam | adamw | sgd (Nesterov momentum)
    lr: float = 1e-3                 # peak learning rate
    weight_decay: float = 0.0        # decoupled for adamw; never applied to norms and biases
    momentum: float = 0.9            # sgd only
    scheduler: str = "step"          # step | onecycle | cosine | none
    step_size: int = 5               # step: epochs between lr drops
    gamma: float = 0.1               # step: lr multiplier at each drop
    warmup_epochs: float = 0.0       # cosine: linear warm-up length
    label_smoothing: float = 0.0     # share of the target spread evenly over all classes
    ema_decay: float = 0.0           # >0 keeps an exponential moving average of the weights for evaluation
    # --- input pipeline ---
    normalize_mean: float = 0.5      # after scaling pixels to [0,1]: (x - mean) / std
    normalize_std: float = 0.5       # see normalize_mean; the model's own pair is recorded in model.json
    rotate: float = 0.0              # random rotation in degrees (+-), training images only
    shear: float = 0.0               # random shear in degrees (+-)
    scale: float = 0.0               # random zoom: factor in [1-scale, 1+scale]
    translate: float = 0.0           # random shift as a fraction of the image size
    elastic: float = 0.0             # smooth random displacement, ± this fraction of the image size
    erase: float = 0.0               # probability of random erasing a rectangle
    interpolation: str = "bilinear"  # resampling of augmented images: bilinear | nearest
    # --- execution ---
    device: str = "auto"             # auto = cuda, then mps, then cpu
    precision: str = "fp32"          # fp32 | bf16 (autocast) | auto (bf16 where the hardware has fast bf16)
    channels_last: bool = True       # memory format for conv layers
    compile: bool = False            # torch.compile the model (slower for cnn3 on a 2-core CPU: see README)
    eval_batch_size: int = 256       # large enough to amortise overhead, small enough to stay in cache
    val_every: int = 1               # validate every N epochs and after the last; 0 = never (keep the last epoch)
    seed: int = 0                    # weights, shuffling, augmentation and dropout (never the data split)
    deterministic: bool = False      # torch.use_deterministic_algorithms
    # --- bookkeeping ---
    preset: str = ""                 # the preset this config started from
    out_dir: str = "runs"            # run directories go below this
    target_accuracy: float = 0.0     # >0: stop once validation accuracy reaches it (time-to-accuracy runs)
    report: bool = True              # emnist-cnn train writes RUN_DIR/report after training
    tensorboard: bool = False        # also write TensorBoard events (scalars, graph, confusion matrix) to the run dir

    def __post_init__(self):
        for f in fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            if kind == "bool" and not isinstance(value, bool):
                raise ConfigError(f"{f.name}: expected true or false, found {value!r}")
            if kind == "str" and not isinstance(value, str):
                raise ConfigError(f"{f.name}: expected a string, found {value!r}")
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{f.name}: expected an integer, found {value!r}")
            if kind == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ConfigError(f"{f.name}: expected a finite number, found {value!r}")
                object.__setattr__(self, f.name, float(value))
            if f.name in CHOICES and value not in CHOICES[f.name]:
                raise ConfigError(f"{f.name}: expected one of {', '.join(CHOICES[f.name])}, found {value!r}")
            if f.name in RANGES:
                low, high, high_included = RANGES[f.name]
                too_low = value < low or (f.name in POSITIVE and value == low)
                too_high = high is not None and (value > high or (value == high and not high_included))
                if too_low or too_high:
                    raise ConfigError(f"{f.name}: expected {range_text(f.name)}, found {value!r}")
        if not self.split:
            raise ConfigError("split: expected a split name (balanced, localdigits, ...) or 'folder', found ''")

    def replace(self, **changes) -> "Config":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "Config":
        """A recorded config (config.json); fields it lacks take today's defaults, unknown ones are ignored."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object, found {type(d).__name__}")
        d = {RENAMED.get(k, k): v for k, v in d.items()}
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, path) -> "Config":
        try:
            with open(path, encoding="utf-8") as f:
                raw = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: not a readable JSON config ({e})") from None
        return cls.from_dict(raw, str(path))


RENAMED = {"model": "architecture"}  # config.json files written before a field was renamed


def range_text(name: str) -> str:
    low, high, high_included = RANGES[name]
    text = (f"> {low}" if name in POSITIVE else f">= {low}")
    return text + (f" and {'<=' if high_included else '<'} {high}" if high is not None else "")


def field_comments() -> dict[str, str]:
    """Each Config field's comment, read from this file's source: the help text of its --flag."""
    comments = {}
    for line in inspect.getsource(Config).splitlines():
        if m := re.match(r"\s+(\w+): \w+ = .*?#\s*(.+)$", line):
            comments[m.group(1)] = m.group(2).strip()
    return comments


# The accuracy recipe: vgg-emnist, AdamW (no decay on norms and biases), one-cycle, label smoothing, an EMA of the
# weights, whole-batch affine + random-erasing augmentation. (One trial each on localbalanced 0-35: resnet-emnist,
# 4.5x the compute, with elastic warps, 12 epochs: 0.8929; vgg-emnist without them, 16 epochs: 0.9145.)
BEST = Config(
    architecture="vgg-emnist", dropout=0.2, batch_size=128, optimizer="adamw", lr=4e-3, weight_decay=5e-4,
    scheduler="onecycle", label_smoothing=0.1, ema_decay=0.999, normalize_mean=0.17, normalize_std=0.33,
    rotate=10.0, shear=8.0, scale=0.1, translate=0.08, erase=0.25, val_every=0,
)

PRESETS: dict[str, Config] = {
    # The original 36-class project: digits + uppercase of Balanced, pooled, 70/20/10; cnn3; the notebook's recipe.
    # (The notebook also rotated validation/test images, a bug not copied: evaluation is never augmented.)
    "reference36": Config(
        preset="reference36", split="balanced", classes="0-35", resplit="0.7,0.2,0.1",
        architecture="cnn3", dropout=0.5, epochs=20, batch_size=64, optimizer="adam", lr=1e-3,
        scheduler="step", step_size=5, gamma=0.1, normalize_mean=0.5, normalize_std=0.5,
        rotate=10.0, interpolation="nearest",  # torchvision RandomRotation(10) resamples with NEAREST
    ),
    # The original digits project: tiny-cnn on EMNIST Digits, inputs in [0,1], Adam 1e-2, batch 32, 3 epochs.
    "reference-digits": Config(
        preset="reference-digits", split="digits", architecture="tiny-cnn", epochs=3, batch_size=32,
        optimizer="adam", lr=1e-2, scheduler="none", normalize_mean=0.0, normalize_std=1.0,
        val_fraction=0.0,
    ),
    # --- Time-to-accuracy presets (benchmarks/time_to_accuracy.py): small BatchNorm nets, large batches, one-cycle.
    # EMNIST's pixel mean/std is about 0.17/0.33. No per-epoch validation: it would cost time and is not needed.
    "fast36": Config(
        preset="fast36", split="balanced", classes="0-35", resplit="0.7,0.2,0.1", val_every=0,
        architecture="fast-cnn-s", dropout=0.1, epochs=8, batch_size=256, optimizer="adamw", lr=6e-3, weight_decay=5e-4,
        scheduler="onecycle", label_smoothing=0.1, normalize_mean=0.17, normalize_std=0.33,
        rotate=10.0, scale=0.1, translate=0.08,
    ),
    "fast-digits": Config(
        preset="fast-digits", split="digits", val_fraction=0.0, architecture="fast-cnn-xs", dropout=0.0, epochs=0.4,
        batch_size=512, optimizer="adamw", lr=1e-2, scheduler="onecycle", normalize_mean=0.17, normalize_std=0.33,
    ),
    "fast-digits-99": Config(
        preset="fast-digits-99", split="digits", val_fraction=0.0, architecture="fast-cnn-s", dropout=0.0, epochs=1.5,
        batch_size=512, optimizer="adamw", lr=1e-2, scheduler="onecycle", normalize_mean=0.17, normalize_std=0.33,
    ),
    # --- Accuracy presets (benchmarks/accuracy.py): the whole recipe (BEST above), sized per split so that each
    # trains in well under 40 minutes on a 2-core CPU. Each points at the official split; `--split localNAME`
    # selects the local corpus. The last epoch's EMA weights are kept (no validation needed to pick one).
    # best36 leaves out random erasing and halves the batch (5 seeds each, 16 epochs; accuracy.py): 0.9141 with
    # erasing at batch 128, 0.9182 without, 0.9207 without at batch 64.
    "best36": BEST.replace(preset="best36", split="balanced", classes="0-35", resplit="0.7,0.2,0.1", epochs=16,
                           erase=0.0, batch_size=64, lr=3e-3),
    "best-balanced": BEST.replace(preset="best-balanced", split="balanced", epochs=16),
    "best-digits": BEST.replace(preset="best-digits", split="digits", epochs=4, label_smoothing=0.05, erase=0.1,
                                val_fraction=0.0),
    "best-bymerge": BEST.replace(preset="best-bymerge", split="bymerge", epochs=3, val_fraction=0.0),
    # --- Line reading (issue 18): crnn-wide + CTC on synthetic lines composed from localbymerge's train characters
    # (data/lines.py), sized to train in about 40 minutes on a 2-core CPU with bf16 (which `auto` picks where the
    # CPU has it). crnn (half as wide, its full-size first stage) cost as much per step and read worse.
    "read-lines": Config(
        preset="read-lines", split="localbymerge", val_fraction=0.05, architecture="crnn-wide", dropout=0.2, epochs=14,
        batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=1e-4, scheduler="onecycle", ema_decay=0.998,
        normalize_mean=0.1, normalize_std=0.25, precision="auto",
    ),
}
# The digit reader `read` takes for charset digits (lines10): lines47 fine-tuned on lines of the digits of its own
# train part alone (classes 0-9: the same train/val cut of them), its classifier cut down to the digits, the space
# and the blank (training/transfer.py), so that it starts as lines47 masked to digits.
PRESETS["read-digit-lines"] = PRESETS["read-lines"].replace(
    preset="read-digit-lines", classes="0-9", init="emnist-cnn/lines47", epochs=20, lr=1e-3)


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}") from None
