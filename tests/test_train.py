import json

import pytest
import torch
from helpers import read_rows, small_config, without_timings
from safetensors.torch import load_file

import emnist_cnn.training.loop as train_mod
from emnist_cnn import runtime
from emnist_cnn.cli import main
from emnist_cnn.config import PRESETS, Config, get_preset
from emnist_cnn.data import build_dataset
from emnist_cnn.errors import ModelFileError
from emnist_cnn.evaluation import evaluate
from emnist_cnn.models import create_model, list_models, load_model
from emnist_cnn.training.optim import lr_factor


def test_train_checkpoint_load_evaluate_round_trip(synth_dir, tmp_path):
    cfg = small_config(synth_dir, tmp_path)
    run = train_mod.train(cfg, progress=False, log=lambda *a: None)
    for name in ("config.json", "metrics.jsonl", "model.safetensors", "model.json", "last.pt", "metrics.json"):
        assert (run / name).is_file(), name
    assert len(read_rows(run)) == 3
    config = json.loads((run / "config.json").read_text())
    assert config["architecture"] == "cnn3" and config["_environment"]["git_revision"]
    meta = json.loads((run / "model.json").read_text())
    assert meta["classes"] == list("abcdef") and meta["normalize"] == {"mean": 0.5, "std": 0.5}
    assert meta["architecture"] == "cnn3" and "upright" in meta["input"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["accuracy"] > 0.5  # learnable synthetic classes
    model, meta2 = load_model(run)
    data = build_dataset("synth", str(synth_dir), val_fraction=0.25)
    again = evaluate(model, *data.test, data.classes, mean=0.5, std=0.5)
    assert again["accuracy"] == pytest.approx(metrics["accuracy"])
    assert meta2["test_accuracy"] == pytest.approx(metrics["accuracy"])


def test_resume_after_kill_matches_uninterrupted_run(synth_dir, tmp_path, monkeypatch):
    cfg = small_config(synth_dir, tmp_path)
    full = train_mod.train(cfg, progress=False, log=lambda *a: None)

    real_epoch = train_mod.train_one_epoch

    def dies_in_third_epoch(*args, **kw):
        if args[6] == 2:  # epoch index
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kw)
    monkeypatch.setattr(train_mod, "train_one_epoch", dies_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_mod.train(cfg.replace(out_dir=str(tmp_path / "killed")), progress=False, log=lambda *a: None)
    (killed,) = (tmp_path / "killed").iterdir()
    assert len(read_rows(killed)) == 2 and not (killed / "metrics.json").exists()
    monkeypatch.setattr(train_mod, "train_one_epoch", real_epoch)
    resumed = train_mod.train(Config(), resume=killed, progress=False, log=lambda *a: None)

    assert without_timings(read_rows(resumed)) == without_timings(read_rows(full))
    a, b = load_file(str(full / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (full, resumed))
    assert ma["accuracy"] == mb["accuracy"] and ma["confusion_matrix"] == mb["confusion_matrix"]


def test_cli_train_with_overrides_then_evaluate(synth_dir, tmp_path, capsys):
    out = tmp_path / "runs"
    rc = main(["train", "--preset", "reference-digits", "--split", "synth", "--data-dir", str(synth_dir),
               "--epochs", "2", "--lr", "0.005", "--val-fraction", "0.2", "--out-dir", str(out), "--quiet",
               "--no-report", "--device", "cpu"])
    assert rc == 0
    (run,) = out.iterdir()
    assert run.name.startswith("reference-digits-")
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["epochs"], cfg["lr"], cfg["architecture"], cfg["batch_size"]) == (2, 0.005, "tiny-cnn", 32)
    capsys.readouterr()
    trained = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run), "--part", "test"]) == 0
    summary = json.loads(capsys.readouterr().out.split("wrote")[0])
    assert summary["n"] == 60 and summary["accuracy"] == trained["accuracy"]  # the kept model, evaluated again
    test_metrics = (run / "metrics.json").read_text()
    assert main(["evaluate", str(run), "--part", "val"]) == 0
    summary = json.loads(capsys.readouterr().out)  # printed, and the run's test metrics are left as they were
    assert summary["n"] == 48 and (run / "metrics.json").read_text() == test_metrics  # 20% of 240


def test_unknown_preset_is_a_clear_error(capsys):
    assert main(["train", "--preset", "nope", "--device", "cpu"]) == 2
    assert "unknown preset 'nope'; available: best-balanced, best-bymerge, " in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown config field"):
        get_preset("reference36").replace(lr_typo=1)


def test_reference_presets_pin_the_original_recipes():
    r = get_preset("reference36")
    assert (r.split, r.classes, r.resplit, r.architecture, r.epochs, r.batch_size, r.optimizer, r.lr) == \
        ("balanced", "0-35", "0.7,0.2,0.1", "cnn3", 20, 64, "adam", 1e-3)
    assert (r.scheduler, r.step_size, r.gamma, r.rotate, r.dropout, r.normalize_mean, r.normalize_std) == \
        ("step", 5, 0.1, 10.0, 0.5, 0.5, 0.5)
    d = get_preset("reference-digits")
    assert (d.split, d.architecture, d.epochs, d.batch_size, d.lr, d.normalize_mean, d.normalize_std) == \
        ("digits", "tiny-cnn", 3, 32, 1e-2, 0.0, 1.0)


def test_step_schedule_equals_steplr_per_epoch():
    cfg = Config(scheduler="step", step_size=5, gamma=0.1, epochs=20)
    factors = [lr_factor(cfg, epoch * 10, 10) for epoch in range(20)]
    assert factors == pytest.approx([1.0] * 5 + [0.1] * 5 + [0.01] * 5 + [0.001] * 5)


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelFileError, match="not a model"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"architecture": "cnn3", "classes": list("ab"),
                                                     "normalize": {"mean": 0, "std": 1}}))
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelFileError, match="model.safetensors: cannot load weights"):
        load_model(tmp_path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_runnable_config(name):
    cfg = get_preset(name)
    assert cfg.preset == name and cfg.architecture in list_models()
    create_model(cfg.architecture, 10, dropout=cfg.dropout)
    total = cfg.epochs * 10
    for step in (0, total // 2, total - 1):
        assert 0 < lr_factor(cfg, step, 10) <= 1.0


@pytest.mark.parametrize("scheduler", ["onecycle", "cosine"])
def test_warmup_schedules_rise_then_fall_to_near_zero(scheduler):
    cfg = Config(scheduler=scheduler, epochs=10, warmup_epochs=1)
    f = [lr_factor(cfg, s, 10) for s in range(100)]
    peak = max(range(100), key=f.__getitem__)
    assert 0 < peak < 50 and f[peak] == pytest.approx(1.0, abs=0.05) and f[-1] < 0.01
    assert all(a <= b + 1e-12 for a, b in zip(f[:peak], f[1:peak + 1]))


def test_val_every(synth_dir, tmp_path):
    run = train_mod.train(small_config(synth_dir, tmp_path, val_every=2), progress=False, log=lambda *a: None)
    assert ["val_accuracy" in r for r in read_rows(run)] == [False, True, True]  # every 2nd epoch and the last
    run = train_mod.train(small_config(synth_dir, tmp_path, val_every=0, epochs=2), progress=False,
                          log=lambda *a: None)
    assert not any("val_accuracy" in r for r in read_rows(run))
    assert json.loads((run / "metrics.json").read_text())["split"] == "test"


def test_init_fine_tunes_a_model_on_an_image_folder_with_new_classes(synth_dir, tmp_path):
    import numpy as np
    from helpers import class_images
    from PIL import Image
    source = train_mod.train(small_config(synth_dir, tmp_path, architecture="fast-cnn-s", epochs=1, rotate=0.0),
                             progress=False, log=lambda *a: None)
    folder = tmp_path / "mine"
    rng = np.random.default_rng(0)
    for k, name in enumerate(["x", "y", "z"]):
        (folder / name).mkdir(parents=True)
        for i, img in enumerate(class_images(np.full(12, k + 2), rng)):
            Image.fromarray(255 - img).resize((40, 40)).save(folder / name / f"{i}.png")  # dark on light, 40x40
    assert main(["train", "--init", str(source), "--freeze", "1", "--data-dir", str(folder), "--epochs", "2",
                 "--out-dir", str(tmp_path / "tuned"), "--quiet", "--no-report", "--device", "cpu"]) == 0
    (tuned,) = (tmp_path / "tuned").iterdir()
    meta = json.loads((tuned / "model.json").read_text())
    assert meta["classes"] == ["x", "y", "z"] and meta["architecture"] == "fast-cnn-s"
    assert json.loads((tuned / "config.json").read_text())["split"] == "folder"
    a, b = load_file(str(source / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    assert torch.equal(a["features.0.0.weight"], b["features.0.0.weight"])  # frozen first convolution
    assert not torch.equal(a["features.1.0.weight"], b["features.1.0.weight"])  # the rest was trained
    assert b["classifier.2.weight"].shape[0] == 3  # a new head for the new classes


@pytest.mark.parametrize("architecture", ["fast-cnn-s", "crnn"])
def test_init_on_some_of_the_sources_classes_starts_as_the_source_masked(tmp_path, architecture):
    # lines10 starts from lines47 this way: its digits (and a line model's space and CTC blank) keep their rows
    from emnist_cnn.models.checkpoint import save_model
    from emnist_cnn.training.transfer import init_architecture, init_from
    source_classes = list("0123456789ABC") + ([" "] if architecture == "crnn" else [])
    source = create_model(architecture, len(source_classes)).eval()
    reads = "line" if architecture == "crnn" else "character"
    (tmp_path / "source").mkdir()
    save_model(tmp_path / "source", source, {"architecture": architecture, "classes": source_classes, "reads": reads,
                                             "normalize": {"mean": 0.1, "std": 0.3}})
    # the source's architecture, not the config's, decides what the run trains
    cfg = init_architecture(Config(split="digits", init=str(tmp_path / "source")))
    assert cfg.architecture == architecture
    classes = list("2074") + ([" "] if architecture == "crnn" else [])
    cfg, model = init_from(cfg, classes, log=lambda *a: None)
    model.eval()
    x = torch.rand(2, 1, 32, 40) if architecture == "crnn" else torch.rand(2, 1, 28, 28)
    rows = [source_classes.index(c) for c in classes] + ([len(source_classes)] if architecture == "crnn" else [])
    with torch.no_grad():
        assert torch.allclose(model(x), source(x)[..., rows], atol=1e-5)
    assert (cfg.normalize_mean, cfg.normalize_std) == (0.1, 0.3)
    # classes the source does not have: a fresh classifier of the right size
    _, fresh = init_from(cfg, list("XY"), log=lambda *a: None)
    assert fresh.classifier[-1].out_features == 2 + (architecture == "crnn")


def test_ensemble_and_tta(synth_dir, tmp_path, capsys):
    from emnist_cnn.evaluation import Ensemble, ShiftTTA
    runs = [train_mod.train(small_config(synth_dir, tmp_path, seed=seed, epochs=2), progress=False,
                            log=lambda *a: None) for seed in (0, 1)]
    model, meta = load_model(runs[0])
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        alone = torch.softmax(model((x - 0.5) / 0.5), 1)
        assert torch.allclose(torch.softmax(Ensemble([(model, 0.5, 0.5)])(x), 1), alone, atol=1e-5)
        assert torch.softmax(ShiftTTA(model)(x), 1).sum(1).allclose(torch.ones(5))
    capsys.readouterr()
    assert main(["ensemble", *map(str, runs), "--output", str(tmp_path / "ens.json")]) == 0
    ens = json.loads((tmp_path / "ens.json").read_text())
    assert ens["n"] == 60 and len(ens["models"]) == 2 and 0.5 < ens["accuracy"] <= 1
    assert main(["evaluate", str(runs[0]), "--tta", "--output", str(tmp_path / "tta.json")]) == 0
    assert json.loads((tmp_path / "tta.json").read_text())["tta"] is True
    assert main(["ensemble", str(runs[0]), "emnist-cnn/digits"]) != 0  # different classes: refused
    assert "different classes" in capsys.readouterr().err + capsys.readouterr().out


def test_seeds_share_one_split_and_ensembles_refuse_members_of_different_splits(synth_dir, tmp_path, monkeypatch,
                                                                                 capsys):
    import emnist_cnn.data.datasets as data_mod

    def run(seed):
        cfg = small_config(synth_dir, tmp_path, seed=seed, epochs=1, resplit="0.6,0.2,0.2",
                           out_dir=str(tmp_path / f"r{seed}"))
        return train_mod.train(cfg, progress=False, log=lambda *a: None)

    same = [run(0), run(1)]  # the seed changes the weights and the batches, never which images are test images
    digests = [json.loads((r / "model.json").read_text())["dataset"]["test_sha256"] for r in same]
    assert digests[0] == digests[1] and len(digests[0]) == 64
    monkeypatch.setattr(data_mod, "SPLIT_SEED", 1)  # as runs made when the split followed the training seed
    other = run(2)
    assert json.loads((other / "model.json").read_text())["dataset"]["test_sha256"] != digests[0]
    capsys.readouterr()
    assert main(["ensemble", str(same[0]), str(other)]) != 0
    assert "different splits" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["ensemble", *map(str, same)]) == 0


def test_bf16_autocast_trains_and_its_loss_falls(synth_dir, tmp_path):
    # Runs on every CPU: where bf16 is not native it is emulated (slower, same arithmetic), so the outcome does not
    # depend on the instruction set.
    cfg = small_config(synth_dir, tmp_path, architecture="fast-cnn-xs", precision="bf16", epochs=4, lr=5e-3, rotate=0.0)
    run = train_mod.train(cfg, progress=False, log=lambda *a: None)
    rows = read_rows(run)
    assert json.loads((run / "config.json").read_text())["_environment"]["precision"] == "bf16"
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]
    assert json.loads((run / "metrics.json").read_text())["accuracy"] > 0.9  # 6 learnable classes


def test_precision_auto_resolves_to_what_the_hardware_offers(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "has_fast_bf16", lambda device: True)
    assert runtime.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(runtime, "has_fast_bf16", lambda device: False)
    assert runtime.resolve_precision("auto", cpu) == "fp32"
    assert runtime.resolve_precision("bf16", cpu) == "bf16"  # explicit wins, fast or not
    assert Config().precision == "fp32"  # the default does not depend on the machine
