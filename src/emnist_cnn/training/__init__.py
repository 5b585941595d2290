"""Training: the loop and the run directory (loop.py), optimiser, schedule and EMA (optim.py), fine-tuning
(transfer.py), torchrun (distributed.py) and TensorBoard events (tensorboard.py)."""
from .loop import train, train_one_epoch

__all__ = ["train", "train_one_epoch"]
