"""--tensorboard: the event file in the run directory holds scalars, the confusion matrix image and the graph."""
import json
import sys

import pytest
from helpers import read_rows, small_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import emnist_cnn.training.loop as train_mod
from emnist_cnn.cli import main


def test_tensorboard_event_file_reads_back(synth_dir, tmp_path):
    out = tmp_path / "runs"
    assert main(["train", "--split", "synth", "--data-dir", str(synth_dir), "--architecture", "tiny-cnn",
                 "--epochs", "2", "--val-fraction", "0.25", "--out-dir", str(out), "--tensorboard", "--quiet",
                 "--device", "cpu"]) == 0
    (run,) = out.iterdir()
    assert list(run.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    assert set(tags["scalars"]) == {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "learning_rate",
                                    "images_per_second"}
    rows = read_rows(run)
    for tag, key in (("loss/train", "train_loss"), ("accuracy/val", "val_accuracy"), ("learning_rate", "lr")):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx([r[key] for r in rows], rel=1e-6)
    assert tags["images"] == ["confusion_matrix"]
    (image,) = events.Images("confusion_matrix")
    assert image.width > 100 and image.height > 100 and image.encoded_image_string[:4] == b"\x89PNG"
    assert tags["graph"]
    graph_ops = {node.op for node in events.Graph().node}
    assert any("conv" in op.lower() for op in graph_ops), graph_ops
    assert json.loads((run / "config.json").read_text())["tensorboard"] is True


def test_tensorboard_off_by_default_and_missing_package_is_a_clear_error(synth_dir, tmp_path, monkeypatch):
    run = train_mod.train(small_config(synth_dir, tmp_path, epochs=1, architecture="tiny-cnn"), progress=False,
                          log=lambda *a: None)
    assert not list(run.glob("events.out.tfevents.*"))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ValueError, match=r"pip install 'emnist-cnn\[tensorboard\]'"):
        train_mod.train(small_config(synth_dir, tmp_path, epochs=1, tensorboard=True,
                                     out_dir=str(tmp_path / "never")), progress=False, log=lambda *a: None)
    assert not (tmp_path / "never").exists()  # failed before creating a run directory
