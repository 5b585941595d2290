"""Recognition: the Recognizer (recognizer.py: one character, or the lines of writing in an image), the line
reader (lines.py) and its CTC decoding with context (decode.py), charsets (charset.py), the connected-component
reader (segment.py), what a reading gives (reading.py), and the backends that run a character model (backends.py:
PyTorch, ONNX Runtime; onnx.py: the export). Images are turned into EMNIST's form by data.preprocess, as image
folders are for training."""
from .backends import BACKENDS, TorchBackend
from .reading import Character, Line, Reading
from .recognizer import Recognizer, image_files

__all__ = ["BACKENDS", "TorchBackend", "Character", "Line", "Reading", "Recognizer", "image_files"]
