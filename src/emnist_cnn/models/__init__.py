"""Models: the registry and the contract every architecture keeps (registry.py), the architectures
(architectures.py), model files (checkpoint.py) and the recognisers shipped with the package (pretrained/)."""
from . import architectures, line_models  # noqa: F401  (registers every architecture)
from .checkpoint import load_model, resolve_model_dir, save_model, training_config
from .registry import (
           EmnistModel,
           conv_layers,
           count_parameters,
           create_model,
           list_models,
           register,
)

__all__ = ["EmnistModel", "conv_layers", "count_parameters", "create_model", "list_models", "register",
           "load_model", "resolve_model_dir", "save_model", "training_config"]
