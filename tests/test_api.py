"""The public API and the CLI's vocabulary: one function per thing the CLI does, one name per concept."""
import json
import re

import numpy as np
import pytest
from helpers import class_images, make_split, small_config
from PIL import Image

import emnist_cnn
from emnist_cnn.cli import main
from emnist_cnn.config import Config, field_comments
from emnist_cnn.errors import ConfigError, DataError, EmnistCnnError, ImageError, ModelFileError, ReportError


def test_the_public_api_is_importable_from_the_top_and_no_submodule_shadows_it(synth_dir, tmp_path):
    import emnist_cnn.training.loop  # noqa: F401  (importing submodules must not replace the functions)
    for name in emnist_cnn.__all__:
        assert getattr(emnist_cnn, name) is not None, name
    assert callable(emnist_cnn.train) and callable(emnist_cnn.evaluate)
    first = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    second = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    assert first != second and (second / "model.safetensors").is_file()


def test_one_base_error_class():
    for error in (ConfigError, DataError, ModelFileError, ImageError, ReportError):
        assert issubclass(error, EmnistCnnError) and issubclass(error, ValueError)


def test_evaluate_models_uses_the_model_s_own_dataset_from_its_model_json(synth_dir, tmp_path):
    run = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    shipped = tmp_path / "shipped"  # a model directory as the package ships them: no config.json beside it
    shipped.mkdir()
    for name in ("model.json", "model.safetensors"):
        (shipped / name).write_bytes((run / name).read_bytes())
    from_run = emnist_cnn.evaluate_models([run], "test", device="cpu")
    from_model_json = emnist_cnn.evaluate_models([shipped], "test", device="cpu")
    assert from_model_json["accuracy"] == from_run["accuracy"] and from_model_json["n"] == 60
    assert from_model_json["dataset"] == "synth"


def test_python_train_detects_an_image_folder_as_the_cli_does(tmp_path):
    folder = tmp_path / "mine"
    rng = np.random.default_rng(0)
    for k, name in enumerate(["x", "y"]):
        (folder / name).mkdir(parents=True)
        for i, img in enumerate(class_images(np.full(10, k), rng)):
            Image.fromarray(255 - img).save(folder / name / f"{i}.png")
    run = emnist_cnn.train(Config(data_dir=str(folder), architecture="tiny-cnn", epochs=1, batch_size=8,
                                  out_dir=str(tmp_path / "runs"), device="cpu", report=False),
                           progress=False, log=lambda *a: None)
    assert json.loads((run / "config.json").read_text())["split"] == "folder"
    assert json.loads((run / "model.json").read_text())["classes"] == ["x", "y"]


def test_resume_refuses_flags_it_would_ignore(synth_dir, tmp_path, capsys):
    run = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    assert main(["train", "--resume", str(run), "--lr", "0.1", "--epochs", "5"]) == 2
    err = capsys.readouterr().err
    assert f"--resume continues {run} as recorded" in err and "--epochs, --lr" in err
    assert f"emnist-cnn train --config {run / 'config.json'}" in err


def test_train_from_a_recorded_config_with_overrides(synth_dir, tmp_path):
    run = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    out = tmp_path / "again"
    assert main(["train", "--config", str(run / "config.json"), "--epochs", "2", "--out-dir", str(out), "--quiet",
                 "--no-report"]) == 0
    (again,) = out.iterdir()
    recorded, new = (json.loads((r / "config.json").read_text()) for r in (run, again))
    assert new["epochs"] == 2 and len((again / "metrics.jsonl").read_text().splitlines()) == 2
    differ = {k for k in recorded if k != "_environment" and recorded[k] != new[k]}
    assert differ == {"epochs", "out_dir"}
    with pytest.raises(SystemExit):
        main(["train", "--config"])  # argparse: the flag needs a file


def test_help_shows_each_field_s_comment_default_and_choices(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    comments = field_comments()
    assert len(comments) == len(Config.__dataclass_fields__)  # every field documents itself
    assert f"--lr LR {comments['lr']} (default: 0.001)" in text
    assert "--precision {fp32,bf16,auto}" in text and "--optimizer {adam,adamw,sgd}" in text
    assert "--scheduler {step,onecycle,cosine,none}" in text
    assert f"{comments['precision']} (default: 'fp32')" in text


@pytest.mark.parametrize("command", ["train", "predict", "read", "evaluate", "report", "export", "serve"])
def test_help_shows_a_default_once_and_never_none(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)  # a help that says its default gets no second
    assert "(default: test)" in text or command != "evaluate"


def test_top_level_help_lists_every_command_but_the_deprecated_one(capsys):
    from emnist_cnn.cli import DEPRECATED_COMMANDS, build_parser
    commands = [c for c in build_parser()._subparsers._group_actions[0].choices if c not in DEPRECATED_COMMANDS]
    assert "ensemble" in DEPRECATED_COMMANDS and "evaluate" in commands
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "SUPPRESS" not in text and "    ensemble " not in text and ",ensemble," not in text
    assert all(f"    {name} " in text for name in commands)
    assert "{" + ",".join(commands) + "}" in text


def test_old_spellings_still_work_for_one_release_and_say_what_to_use(synth_dir, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "--split", "synth", "--data-dir", str(synth_dir), "--model", "tiny-cnn", "--epochs", "1",
                 "--device", "cpu", "--out-dir", str(out), "--quiet", "--no-report"]) == 0
    (run,) = out.iterdir()
    assert json.loads((run / "config.json").read_text())["architecture"] == "tiny-cnn"
    assert "train --model is deprecated" in capsys.readouterr().err
    for old, new in ((["--split", "val"], "--part val"), (["--data", "synth", "--data-dir", str(synth_dir),
                                                            "--part", "val"], "--split"),
                     (["--part", "val", "--batch-size", "16"], "--eval-batch-size")):
        assert main(["evaluate", str(run), *old]) == 0
        captured = capsys.readouterr()
        assert f"use {new}" in captured.err and json.loads(captured.out)["n"] == 24  # val_fraction 0.1 of 240
    assert main(["ensemble", str(run), str(run)]) == 0
    assert "emnist-cnn ensemble is deprecated" in capsys.readouterr().err


def test_data_info_shows_the_parts_that_are_there_and_names_the_missing_files(tmp_path, capsys):
    root = make_split(tmp_path / "data", name="half")
    for kind in ("images-idx3", "labels-idx1"):
        (root / f"emnist-half-train-{kind}-ubyte.gz").unlink()
    assert main(["data", "info", "half", "--data-dir", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["train"], info["test"], info["num_classes"]) == (0, 60, 6)
    assert info["missing"] == ["emnist-half-train-images-idx3-ubyte.gz", "emnist-half-train-labels-idx1-ubyte.gz"]
    assert list(info["per_class"]) == ["test"] and sum(info["per_class"]["test"].values()) == 60


@pytest.mark.realdata
@pytest.mark.slow
def test_evaluate_a_shipped_model_on_its_own_dataset_and_data_info_of_a_partial_official_split(real_data_dir,
                                                                                               capsys):
    assert main(["evaluate", "emnist-cnn/digits", "--device", "cpu"]) == 0  # no --split: localdigits, from model.json
    summary = json.loads(capsys.readouterr().out)
    shipped = json.loads((emnist_cnn.models.resolve_model_dir("emnist-cnn/digits") / "model.json").read_text())
    assert summary["n"] == 17_500 and summary["accuracy"] == pytest.approx(shipped["test_accuracy"], abs=2e-4)
    assert main(["data", "info", "byclass", "--json"]) == 0  # the official test part is here, the train part not
    info = json.loads(capsys.readouterr().out)
    assert (info["train"], info["test"], info["num_classes"]) == (0, 116_323, 62)
    assert info["missing"] == ["emnist-byclass-train-images-idx3-ubyte.gz", "emnist-byclass-train-labels-idx1-ubyte.gz"]
