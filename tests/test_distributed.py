"""DDP under torchrun: 2 CPU processes over 127.0.0.1 with Gloo, compared with a single-process run."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import read_rows, small_config
from safetensors.torch import load_file

import emnist_cnn
import emnist_cnn.training.loop as train_mod

HERE = Path(__file__).resolve().parent
# No dropout and no augmentation: the deterministic path, where DDP must reproduce one process exactly.
# 180 training images in global batches of 25: the last batch (5) splits unevenly, 3 + 2.
DETERMINISTIC = dict(architecture="tiny-cnn", rotate=0.0, epochs=3, batch_size=25, lr=5e-3, channels_last=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(program: list[str], *, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """torchrun --nproc_per_node=2 on this machine; the package under test on PYTHONPATH."""
    src = str(Path(emnist_cnn.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(HERE)]), "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", *program]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def cli_args(cfg) -> list[str]:
    flags = {"split": cfg.split, "data-dir": cfg.data_dir, "architecture": cfg.architecture, "epochs": cfg.epochs,
             "batch-size": cfg.batch_size, "lr": cfg.lr, "scheduler": cfg.scheduler, "step-size": cfg.step_size,
             "rotate": cfg.rotate, "val-fraction": cfg.val_fraction, "eval-batch-size": cfg.eval_batch_size,
             "out-dir": cfg.out_dir, "device": cfg.device, "precision": cfg.precision}
    return ["train", "--quiet", "--no-channels-last", *[a for k, v in flags.items() for a in (f"--{k}", str(v))]]


def assert_same_weights(run_a: Path, run_b: Path, atol=1e-6, rtol=1e-5):
    a, b = load_file(str(run_a / "model.safetensors")), load_file(str(run_b / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=rtol, msg=lambda m: f"{k}: {m}")


def assert_same_metrics(rows_a, rows_b, rel=1e-4, abs=1e-5):
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_b]
    for ra, rb in zip(rows_a, rows_b):
        for key in ("lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert ra[key] == pytest.approx(rb[key], rel=rel, abs=abs), (ra["epoch"], key)


@pytest.fixture
def single_run(synth_dir, tmp_path):
    cfg = small_config(synth_dir, tmp_path, **DETERMINISTIC)
    return cfg, train_mod.train(cfg, progress=False, log=lambda *a: None)


def test_two_ranks_match_one_process_and_write_one_run_dir(single_run, tmp_path):
    cfg, single = single_run
    out = tmp_path / "ddp"
    done = torchrun(["-m", "emnist_cnn", *cli_args(cfg.replace(out_dir=str(out)))])
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = out.iterdir()  # exactly one run directory, written by rank 0
    # the same files as the single-process run, plus the report that rank 0 alone writes
    assert sorted(p.name for p in run.iterdir()) == sorted([*(p.name for p in single.iterdir()), "report"])
    assert done.stdout.count("run directory:") == 1 and done.stdout.count("epoch 1/3") == 1  # rank 0 logs
    assert_same_weights(single, run)
    assert_same_metrics(read_rows(single), read_rows(run))
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == pytest.approx(
        json.loads((single / "metrics.json").read_text())["accuracy"])


def test_two_ranks_in_bf16_stay_within_bf16_rounding_of_one_process(synth_dir, tmp_path):
    # Under bf16 autocast each rank computes its half of the batch with 8-bit significands, so one process and two
    # ranks round differently, and 3 epochs carry the differences along: measured (tensor-wise L2) 0.03-0.5% of each
    # tensor's norm, and about a quarter of the distance between bf16 and fp32 training of the same run. The bounds
    # below (2% per tensor; no more than bf16's own distance from fp32) leave 4x of room on both, and a rank that
    # trained on other data, or a wrong all-reduce, moves weights by tens of percent.
    cfg = small_config(synth_dir, tmp_path, **DETERMINISTIC, precision="bf16")
    single = train_mod.train(cfg, progress=False, log=lambda *a: None)
    done = torchrun(["-m", "emnist_cnn", *cli_args(cfg.replace(out_dir=str(tmp_path / "ddp")))])
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = (tmp_path / "ddp").iterdir()
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["precision"] == recorded["_environment"]["precision"] == "bf16"
    fp32 = train_mod.train(cfg.replace(precision="fp32", out_dir=str(tmp_path / "fp32")), progress=False,
                           log=lambda *a: None)
    one, two, full = (load_file(str(r / "model.safetensors")) for r in (single, run, fp32))
    for k in one:
        assert (two[k] - one[k]).norm() <= 0.02 * one[k].norm(), k
    distance = lambda a, b: sum(((a[k] - b[k]) ** 2).sum() for k in a).sqrt()  # noqa: E731
    assert distance(one, full) > 0  # bf16 really ran (on every CPU: emulated where it is not native)
    assert distance(one, two) <= distance(one, full)  # and DDP adds less than bf16 does
    assert_same_metrics(read_rows(single), read_rows(run), rel=0.05, abs=0.02)


def test_failing_rank_ends_the_job_and_resume_continues_under_ddp(single_run, tmp_path):
    cfg, single = single_run
    out = tmp_path / "ddp"
    start = time.monotonic()
    failed = torchrun([str(HERE / "ddp_faulty_rank.py"), *cli_args(cfg.replace(out_dir=str(out)))],
                      env={"FAULT": "crash", "FAULT_RANK": "1", "FAULT_EPOCH": "2"})
    assert failed.returncode != 0
    assert "RuntimeError: injected failure in rank 1" in failed.stderr
    assert "ChildFailedError" in failed.stderr  # torchrun names the failed rank and stops the others
    assert time.monotonic() - start < 120
    (run,) = out.iterdir()
    assert len(read_rows(run)) == 2 and not (run / "metrics.json").exists()

    resumed = torchrun(["-m", "emnist_cnn", "train", "--quiet", "--resume", str(run)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and len(list(out.iterdir())) == 1
    assert_same_weights(single, run)
    assert_same_metrics(read_rows(single), read_rows(run))


def test_hung_rank_times_out_with_a_clear_error(synth_dir, tmp_path):
    cfg = small_config(synth_dir, tmp_path, **DETERMINISTIC)
    start = time.monotonic()
    hung = torchrun([str(HERE / "ddp_faulty_rank.py"), *cli_args(cfg)], timeout=120,
                    env={"FAULT": "hang", "FAULT_RANK": "1", "FAULT_EPOCH": "1", "EMNIST_CNN_DIST_TIMEOUT": "5"})
    assert hung.returncode != 0
    assert "ChildFailedError" in hung.stderr and "timed out" in hung.stderr.lower()
    assert time.monotonic() - start < 90
