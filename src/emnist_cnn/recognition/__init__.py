"""Recognition: the Recognizer (recognizer.py: one character, or a line of separated ones), the segmentation of a
line into characters (segment.py), and the backends that run a model (backends.py: PyTorch, ONNX Runtime;
onnx.py: the export). Images are turned into EMNIST's form by data.preprocess, as image folders are for training."""
from .backends import BACKENDS, TorchBackend
from .recognizer import Character, Reading, Recognizer, image_files

__all__ = ["BACKENDS", "TorchBackend", "Character", "Reading", "Recognizer", "image_files"]
