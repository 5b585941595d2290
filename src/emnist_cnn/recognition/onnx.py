"""ONNX export of a trained model, and an onnxruntime backend that serves the exported file.

The .onnx file stands alone: input `images` (batch×1×28×28 float32, normalised), output `logits`, a dynamic
batch dimension, and metadata holding what a user needs to prepare inputs and read outputs (classes,
normalisation, input format). A line model's file takes batch×1×32×width (width dynamic too) and gives
batch×steps×(classes+1) logits (steps = width // stride), CTC's blank last; its metadata adds `reads`, `height`
and `stride`.
`--quantize int8` quantises weights and activations to int8 (onnxruntime's static QDQ quantisation, calibrated
on training images of the model's own dataset): faster on CPUs, unlike dynamic quantisation, which is slower
than fp32 for convolutions (benchmarks/export.py measured both).
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..data import dataset_for, to_input
from ..errors import ConfigError, DataError, ModelFileError
from ..files import atomic_write
from ..models import load_model, resolve_model_dir, training_config
from ..models.checkpoint import INPUT_FORMAT, LINE_INPUT_FORMAT

DEFAULT_OPSET = 18
QUANTIZATIONS = ("int8",)
CALIBRATION_IMAGES = 512


def default_output(source: str | os.PathLike, quantize: str | None) -> Path:
    """Next to the model for a run or model directory; in the working directory for a pretrained name."""
    name = "model.int8.onnx" if quantize else "model.onnx"
    if Path(source).exists():
        return resolve_model_dir(source) / name
    return Path(f"{Path(str(source)).name}.{name[len('model.'):]}")


def metadata(meta: dict, quantize: str | None, stride: int | None = None) -> dict[str, str]:
    out = {"classes": json.dumps(meta["classes"]), "normalize": json.dumps(meta["normalize"]),
           "architecture": meta["architecture"], "input": INPUT_FORMAT, "quantization": quantize or "none",
           "producer": "emnist-cnn"}
    if meta.get("reads") == "line":
        out.update(reads="line", input=LINE_INPUT_FORMAT, height=str(meta["height"]), stride=str(stride))
    return out


def to_onnx_proto(model: torch.nn.Module, opset: int):
    """The torch.export-based exporter's ModelProto, batch dimension dynamic (and a line's width)."""
    model = model.cpu().eval()
    line = getattr(model, "reads", None) == "line"
    if line:
        # Dim.DYNAMIC, not named Dims: with Dim("width") the second line model exported in a process came out with
        # the example's width fixed (torch 2.13), and onnxruntime refused every other width
        example, dims = torch.zeros(2, 1, model.height, 64), {0: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}
    else:
        example, dims = torch.zeros(2, 1, 28, 28), {0: torch.export.Dim("batch")}
    program = torch.onnx.export(model, (example,), input_names=["images"], output_names=["logits"],
                                opset_version=opset, dynamo=True, verbose=False, dynamic_shapes=(dims,))
    proto = named_dims(program.model_proto, {0: "batch", 3: "width"})
    if line:
        # the exporter's own expression for the steps (16*Min(width//4, width//64) with torch 2.13) is wrong for
        # most widths, although onnxruntime computes the right one when it runs: the file says "steps" instead,
        # width // stride (the metadata's stride); a dimension is a value or a name, so this replaces either
        proto.graph.output[0].type.tensor_type.shape.dim[1].dim_param = "steps"
    return proto


def named_dims(proto, names: dict[int, str]):
    """The traced symbols of the first input's dimensions (s0, s77, ...) renamed wherever they appear, so that
    the file says batch × 1 × 32 × width (a dimension already named, or fixed, stays as it is)."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    rename = {dims[k].dim_param: name for k, name in names.items() if k < len(dims) and dims[k].dim_param}
    symbol = re.compile(r"\b(" + "|".join(map(re.escape, rename)) + r")\b")
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_param = symbol.sub(lambda m: rename[m.group(1)], d.dim_param)
    return proto


def copy_without_value_info(proto):
    import onnx
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    del out.graph.value_info[:]
    return out


def calibration_images(source, count: int = CALIBRATION_IMAGES) -> torch.Tensor:
    """uint8 images from the training part of the dataset the model was trained on."""
    cfg = training_config(source).replace(val_fraction=0.0)
    try:
        images = dataset_for(cfg).train[0]
    except DataError as e:
        raise DataError(f"int8 calibration uses training images of {cfg.split!r}: {e}") from None
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:count]
    return images[pick]


def quantize_int8(proto, calibration: np.ndarray):
    """Static int8 quantisation (QDQ, per-channel weights), activation ranges from the calibration batch."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": calibration[i:i + 64]} for i in range(0, len(calibration), 64)])

        def get_next(self):
            return next(self.batches, None)

    proto = copy_without_value_info(proto)  # the quantiser re-infers shapes; stale ones (of weights) clash
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared, int8 = (Path(tmp) / f"{name}.onnx" for name in ("fp32", "prepared", "int8"))
        onnx.save(proto, fp32)
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(prepared, int8, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return onnx.load(int8)


def export_onnx(source: str | os.PathLike, output: str | os.PathLike | None = None, *, opset: int = DEFAULT_OPSET,
                quantize: str | None = None, calibration: torch.Tensor | None = None) -> Path:
    """Write RUN_OR_MODEL as ONNX; returns the file written.

    quantize="int8" calibrates on `calibration` (uint8 N×28×28), by default on calibration_images(source).
    """
    import onnx
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"quantize {quantize!r}: expected one of {', '.join(QUANTIZATIONS)}")
    model, meta = load_model(source, "cpu")
    if quantize is not None and meta.get("reads") == "line":
        raise ConfigError(f"quantize {quantize!r}: int8 calibrates on character images; {source} is a line model "
                          f"(export it without --quantize)")
    if quantize == "int8":  # find the calibration images first: a missing dataset fails before the slow export
        images = calibration if calibration is not None else calibration_images(source)
        calibration = to_input(images, meta["normalize"]["mean"], meta["normalize"]["std"]).numpy()
    proto = to_onnx_proto(model, opset)
    if quantize == "int8":
        proto = quantize_int8(proto, calibration)
    del proto.metadata_props[:]
    for key, value in metadata(meta, quantize, getattr(model, "stride", None)).items():
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
        if meta.get("reads") == "line":
            raise ModelFileError(f"{self.path}: a line model's export (batch×1×{meta.get('height')}×width in, CTC "
                                 f"logits out); the ONNX backend serves character models")
        self.quantization = meta.get("quantization", "none")
        self.meta = {"architecture": meta.get("architecture"), "classes": self.classes, "normalize": self.normalize,
                     "quantization": self.quantization, "format": "onnx"}
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """float32 N×1×28×28, normalised (see `normalize`) -> float32 N×classes logits."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1:] != (1, 28, 28):
            raise ModelFileError(f"input batch: expected shape N×1×28×28, found {'×'.join(map(str, batch.shape))}")
        return self.session.run(None, {self.input_name: batch.astype(np.float32, copy=False)})[0]
