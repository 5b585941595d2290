"""ONNX export of a trained model, and an onnxruntime backend that serves the exported file.

The .onnx file stands alone: input `images` (batch×1×28×28 float32, normalised), output `logits`, a dynamic
batch dimension, and metadata holding what a user needs to prepare inputs and read outputs (classes,
normalisation, input format). `--quantize int8` adds dynamic int8 quantisation of the weights (onnxruntime).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .checkpoint import INPUT_FORMAT, ModelFileError, atomic_write, load_model, resolve_model_dir

DEFAULT_OPSET = 18
QUANTIZATIONS = ("int8",)


def default_output(source: str | os.PathLike, quantize: str | None) -> Path:
    """Next to the model for a run or model directory; in the working directory for a pretrained name."""
    name = "model.int8.onnx" if quantize else "model.onnx"
    if Path(source).exists():
        return resolve_model_dir(source) / name
    return Path(f"{Path(str(source)).name}.{name[len('model.'):]}")


def metadata(meta: dict, quantize: str | None) -> dict[str, str]:
    return {"classes": json.dumps(meta["classes"]), "normalize": json.dumps(meta["normalize"]),
            "architecture": meta["architecture"], "input": INPUT_FORMAT, "quantization": quantize or "none",
            "producer": "emnist-cnn"}


def to_onnx_proto(model: torch.nn.Module, opset: int):
    """The torch.export-based exporter's ModelProto, batch dimension dynamic."""
    example = torch.zeros(2, 1, 28, 28)
    program = torch.onnx.export(model.cpu().eval(), (example,), input_names=["images"], output_names=["logits"],
                                opset_version=opset, dynamo=True, verbose=False,
                                dynamic_shapes=({0: torch.export.Dim("batch")},))
    return program.model_proto


def copy_without_value_info(proto):
    import onnx
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.value_info[:]
    return out


def quantize_int8(proto):
    """Dynamic int8 quantisation (weights int8, activations quantised on the fly), via temporary files."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    proto = copy_without_value_info(proto)  # the quantiser re-infers shapes; stale ones (of weights) clash
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(proto, fp32)
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8)
        return onnx.load(int8)


def export_onnx(source: str | os.PathLike, output: str | os.PathLike | None = None, *, opset: int = DEFAULT_OPSET,
                quantize: str | None = None) -> Path:
    """Write RUN_OR_MODEL as ONNX (optionally int8-quantised); returns the file written."""
    import onnx
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize {quantize!r}: expected one of {', '.join(QUANTIZATIONS)}")
    model, meta = load_model(source, "cpu")
    proto = to_onnx_proto(model, opset)
    if quantize == "int8":
        proto = quantize_int8(proto)
    del proto.metadata_props[:]
    for key, value in metadata(meta, quantize).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    out = Path(output) if output else default_output(source, quantize)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda p: onnx.save(proto, p))
    return out


class OnnxBackend:
    """An exported model under onnxruntime: `classes`, `normalize` and `logits(batch)` like the PyTorch model."""

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        import onnxruntime as ort
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"{self.path}: no such ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = onnxruntime's choice (all cores)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
            raise ModelFileError(f"{self.path}: not a loadable ONNX model ({e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.classes: list[str] = json.loads(meta["classes"])
            self.normalize: dict = json.loads(meta["normalize"])
        except (KeyError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{self.path}: metadata field {e} missing or invalid; export it with "
                                 f"`emnist-cnn export`") from None
        self.quantization = meta.get("quantization", "none")
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 N×1×28×28, normalised (see `normalize`) -> float32 N×classes logits."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1:] != (1, 28, 28):
            raise ValueError(f"input batch: expected shape N×1×28×28, found {'×'.join(map(str, batch.shape))}")
        return self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})[0]
