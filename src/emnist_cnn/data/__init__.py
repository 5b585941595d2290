"""Data: EMNIST's files (files.py, download.py), datasets built from them (datasets.py), image folders
(folders.py), the conversion of any image into EMNIST's form (preprocess.py), the input normalisation
(normalize.py) and whole-batch augmentation (augment.py)."""
from .datasets import (
           ALIASES,
           Dataset,
           Split,
           build_dataset,
           dataset_for,
           load_split,
           resolve_split,
)
from .files import OFFICIAL_SPLITS, cache_dir, search_dirs
from .folders import is_image_folder, load_folder
from .normalize import normalize, to_input
from .preprocess import IMAGE_SUFFIXES, to_emnist

__all__ = ["ALIASES", "Dataset", "Split", "build_dataset", "dataset_for", "load_split", "resolve_split",
           "OFFICIAL_SPLITS", "cache_dir", "search_dirs", "is_image_folder", "load_folder", "normalize", "to_input",
           "IMAGE_SUFFIXES", "to_emnist"]
