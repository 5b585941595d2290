"""--tensorboard: TensorBoard event files in the run directory (`tensorboard --logdir runs/`).

Per epoch the scalars of metrics.jsonl (loss, accuracy, learning rate, images/s); once, the model graph; at the
end, the test confusion matrix as an image.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError

SCALARS = {"train_loss": "loss/train", "val_loss": "loss/val", "train_accuracy": "accuracy/train",
           "val_accuracy": "accuracy/val", "lr": "learning_rate", "images_per_second": "images_per_second"}


class TensorBoardLog:
    def __init__(self):
        """Fails at once without the tensorboard package (before a run directory exists)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--tensorboard needs the tensorboard package: pip install 'emnist-cnn[tensorboard]'") \
                from None
        self.summary_writer = SummaryWriter

    def start(self, run_dir: Path, model: torch.nn.Module) -> None:
        self.run_dir = Path(run_dir)
        self.writer = self.summary_writer(log_dir=str(self.run_dir))
        device = next(model.parameters()).device
        # A traced copy in eval mode: tracing must not touch the training model or its random state.
        self.writer.add_graph(copy.deepcopy(model).eval(), torch.zeros(1, 1, 28, 28, device=device))

    def epoch(self, row: dict) -> None:
        for key, tag in SCALARS.items():
            if key in row:
                self.writer.add_scalar(tag, row[key], row["epoch"])
        self.writer.flush()

    def finish(self) -> None:
        """The confusion matrix of metrics.json (written by the final evaluation), then close."""
        metrics_path = self.run_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        if "confusion_matrix" in metrics:
            classes = json.loads((self.run_dir / "model.json").read_text())["classes"]
            image = confusion_image(np.array(metrics["confusion_matrix"]), classes,
                                    f"{metrics['split']} confusion matrix (accuracy {metrics['accuracy']:.4f})")
            self.writer.add_image("confusion_matrix", image, dataformats="HWC")
        self.writer.close()


def confusion_image(matrix: np.ndarray, classes: list[str], title: str) -> np.ndarray:
    """Row-normalised confusion matrix rendered as an RGB uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    rates = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    size = 3 + 0.2 * len(classes)
    fig = Figure(figsize=(size, size), dpi=80)
    ax = fig.add_subplot()
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, fontsize=7)
    ax.set_yticks(ticks, classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
