"""ONNX export: dynamic batch, metadata, int8 variant, errors; parity with onnxruntime on real test images."""
import numpy as np
import onnx
import pytest
import torch
from helpers import small_config

from emnist_cnn import train
from emnist_cnn.cli import main
from emnist_cnn.config import Config
from emnist_cnn.data import build_dataset, to_input
from emnist_cnn.errors import DataError, ModelFileError
from emnist_cnn.models import create_model, load_model, save_model
from emnist_cnn.recognition.onnx import OnnxBackend, export_onnx


@pytest.fixture
def model_dir(tmp_path):
    """An (untrained) cnn3 saved as a model directory, as training would."""
    torch.manual_seed(0)
    directory = tmp_path / "model"
    directory.mkdir()
    save_model(directory, create_model("cnn3", 6), {"architecture": "cnn3", "model_args": {"dropout": 0.5},
                                                     "classes": list("abcdef"),
                                                     "normalize": {"mean": 0.1736, "std": 0.3317},
                                                     "dataset": {"name": "synth"}})
    return directory


def torch_logits(directory, x: torch.Tensor) -> np.ndarray:
    model, _ = load_model(directory)
    with torch.inference_mode():
        return model(x).numpy()


def test_cli_export_has_dynamic_batch_metadata_and_matches_pytorch(model_dir, capsys):
    assert main(["export", str(model_dir), "--opset", "17"]) == 0
    path = model_dir / "model.onnx"
    assert f"wrote {path}" in capsys.readouterr().out
    proto = onnx.load(path)
    assert proto.opset_import[0].version == 17
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic: any batch size
    backend = OnnxBackend(path)
    assert backend.classes == list("abcdef") and backend.normalize == {"mean": 0.1736, "std": 0.3317}
    assert backend.quantization == "none"
    for n in (1, 7, 300):
        x = torch.randn(n, 1, 28, 28)
        got = backend.logits(x.numpy())
        assert got.shape == (n, 6) and got.dtype == np.float32
        np.testing.assert_allclose(got, torch_logits(model_dir, x), atol=1e-4, rtol=0)


def test_int8_export_calibrates_on_the_runs_training_data(synth_dir, tmp_path):
    run = train(small_config(synth_dir, tmp_path, epochs=2), progress=False, log=lambda *a: None)
    fp32 = export_onnx(run, tmp_path / "a.onnx")
    int8 = export_onnx(run, quantize="int8")  # calibration images: the run's own training split (config.json)
    assert int8 == run / "model.int8.onnx"
    assert int8.stat().st_size < fp32.stat().st_size / 2.5  # weights stored as int8
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(int8).graph.node)
    backend = OnnxBackend(int8)
    assert backend.quantization == "int8" and backend.classes == list("abcdef")
    data = build_dataset("synth", str(synth_dir), val_fraction=0.0)
    x = to_input(data.test[0], 0.5, 0.5)
    ref, got = torch_logits(run, x), backend.logits(x.numpy())
    assert not np.array_equal(got, ref)  # quantised: close, not identical
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.9


def test_export_and_backend_errors(model_dir, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere")]) == 2
    assert "not a model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="quantize 'int4'"):
        export_onnx(model_dir, quantize="int4")
    # int8 calibrates on the model's training images; its dataset (synth) is not on this machine
    with pytest.raises(DataError, match="int8 calibration uses training images of 'synth'"):
        export_onnx(model_dir, quantize="int8")
    with pytest.raises(ModelFileError, match="no such ONNX file"):
        OnnxBackend(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        OnnxBackend(tmp_path / "junk.onnx")
    path = export_onnx(model_dir)
    proto = onnx.load(path)
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "bare.onnx")
    with pytest.raises(ModelFileError, match="metadata field 'classes' missing"):
        OnnxBackend(tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="expected shape N×1×28×28, found 4×28×28"):
        OnnxBackend(path).logits(np.zeros((4, 28, 28), np.float32))


@pytest.mark.realdata
@pytest.mark.slow
def test_onnxruntime_parity_on_512_real_test_images(real_data_dir, tmp_path):
    # cnn3, one epoch on the digits of localbalanced (about 7,000 images): a real model, trained quickly.
    cfg = Config(split="localbalanced", classes="0-9", architecture="cnn3", epochs=1, batch_size=128, lr=2e-3,
                 scheduler="none", val_fraction=0.0, out_dir=str(tmp_path / "runs"), device="cpu",
                 precision="fp32")
    run = train(cfg, progress=False, log=lambda *a: None)
    data = build_dataset("localbalanced", None, "0-9", val_fraction=0.0)
    images, labels = data.test[0][:512], data.test[1][:512]
    model, meta = load_model(run)
    x = to_input(images, meta["normalize"]["mean"], meta["normalize"]["std"])
    with torch.inference_mode():
        ref = model(x).numpy()

    fp32 = OnnxBackend(export_onnx(run))
    assert fp32.classes == data.classes
    got = fp32.logits(x.numpy())
    assert np.abs(got - ref).max() <= 1e-4
    assert (got.argmax(1) == ref.argmax(1)).all()

    int8 = OnnxBackend(export_onnx(run, quantize="int8"))
    acc_fp32 = float((ref.argmax(1) == labels.numpy()).mean())
    acc_int8 = float((int8.logits(x.numpy()).argmax(1) == labels.numpy()).mean())
    assert acc_fp32 > 0.6  # a real model, so the comparison means something
    assert abs(acc_int8 - acc_fp32) <= 0.02, (acc_fp32, acc_int8)


def test_server_with_onnxruntime_backend_answers_like_pytorch(model_dir):
    from fastapi.testclient import TestClient

    from emnist_cnn.recognition import Recognizer
    from emnist_cnn.serving.app import create_app
    export_onnx(model_dir, model_dir / "model.onnx")
    pixels = np.zeros((28, 28), dtype=int)
    pixels[4:24, 12:16] = 255  # a vertical stroke
    answers = {}
    for backend, path in (("torch", model_dir), ("onnxruntime", model_dir / "model.onnx")):
        client = TestClient(create_app(Recognizer.load(str(path), backend)))
        response = client.post("/api/v1/predict", json={"pixels": pixels.tolist()}, params={"top_k": 3})
        assert response.status_code == 200, response.text
        answers[backend] = response.json()["predictions"]
    assert [p["character"] for p in answers["torch"]] == [p["character"] for p in answers["onnxruntime"]]
    for a, b in zip(answers["torch"], answers["onnxruntime"]):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-4)


@pytest.mark.parametrize("architecture", ["crnn", "crnn-wide"])
def test_a_line_model_exports_with_any_width_and_says_what_it_reads(tmp_path, architecture):
    import onnxruntime as ort
    from helpers import random_line_model_dir

    from emnist_cnn.errors import ConfigError
    line_dir = random_line_model_dir(tmp_path / "line", architecture=architecture)
    export_onnx(line_dir, tmp_path / "first.onnx")  # a second export in one process lost the dynamic width
    path = export_onnx(line_dir)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 1, 32, "width"]
    out_dims = onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out_dims] == ["batch", "steps", len("abcdef ") + 1]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["reads"] == "line" and meta["height"] == "32" and meta["stride"] == "4"
    assert meta["input"].startswith("32 rows x any width")
    assert load_model(line_dir)[1]["input"] == meta["input"]  # model.json says the same
    model, _ = load_model(line_dir)
    model.eval()
    for n, width in ((1, 37), (3, 200)):  # neither is the export's example (2×64)
        x = torch.randn(n, 1, 32, width)
        got = session.run(None, {"images": x.numpy()})[0]
        with torch.no_grad():
            want = model(x).numpy()
        assert got.shape == (n, width // 4, len("abcdef ") + 1)  # classes (the space one of them), the blank
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ConfigError, match="line model .export it without --quantize"):
        export_onnx(line_dir, quantize="int8")
    with pytest.raises(ModelFileError, match="a line model's export"):
        OnnxBackend(path)
