"""emnist-cnn: train, evaluate, explain and serve CNNs for handwritten characters (EMNIST)."""
from .config import PRESETS, Config, get_preset
from .data import DataError, Dataset, build_dataset, load_split
from .evaluate import evaluate
from .models import count_parameters, create_model, list_models

__version__ = "0.1.0"


def train(cfg: Config, **kwargs):
    """Train per cfg; returns the run directory (see emnist_cnn.train.train)."""
    from .train import train as _train
    return _train(cfg, **kwargs)


def load_model(path_or_name, device="cpu"):
    """(model, model.json) from a run directory, model directory or pretrained name."""
    from .checkpoint import load_model as _load
    return _load(path_or_name, device)


__all__ = ["Config", "PRESETS", "get_preset", "DataError", "Dataset", "build_dataset", "load_split", "evaluate",
           "create_model", "list_models", "count_parameters", "train", "load_model"]
