"""emnist-cnn: train, evaluate, explain and serve CNNs for handwritten characters (EMNIST).

The public API, imported eagerly so that no submodule can shadow a function of the same name. The package is
grouped by stage (a change goes where its stage is):

    config.py     Config, the presets            errors.py   the error classes    runtime.py  device, precision
    data/         files, download, datasets, image folders, preprocessing of any image, normalisation, augmentation
    models/       registry and model contract, architectures, model files, shipped pretrained models
    training/     the loop and run directory, optimiser/schedule/EMA, fine-tuning, torchrun, TensorBoard
    evaluation/   evaluate(), metrics, ensembles and TTA, the HTML report, its figures and explanations
    recognition/  Recognizer (predict, read), segmentation, backends (PyTorch, ONNX Runtime), ONNX export
    serving/      the REST API and the web page
    cli.py        the `emnist-cnn` command, a thin layer over these functions
"""
from .config import PRESETS, Config, get_preset
from .data import Dataset, build_dataset, dataset_for, load_split
from .errors import (
           ConfigError,
           DataError,
           EmnistCnnError,
           ImageError,
           ModelFileError,
           ReportError,
           RunError,
)
from .evaluation import evaluate, evaluate_models, write_report
from .models import (
           count_parameters,
           create_model,
           list_models,
           load_model,
           training_config,
)
from .recognition import Recognizer
from .recognition.onnx import export_onnx
from .training import train

__version__ = "0.1.0"

__all__ = ["Config", "PRESETS", "get_preset", "Dataset", "build_dataset", "dataset_for", "load_split",
           "EmnistCnnError", "ConfigError", "DataError", "ImageError", "ModelFileError", "ReportError", "RunError",
           "evaluate", "evaluate_models", "write_report", "count_parameters", "create_model", "list_models",
           "load_model", "training_config", "Recognizer", "export_onnx", "train"]
