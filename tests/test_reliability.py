"""Hostile and careless input: no request stalls the server, no bad flag or file ends in a traceback, caches and
run files are what they claim to be. Each test fails on the code before these defects were fixed."""
import json
import multiprocessing
import os
import socket
import threading
import time

import numpy as np
import pytest
from helpers import SEVEN, draw, make_split, png, random_model_dir, serving, small_config
from PIL import Image

import emnist_cnn
from emnist_cnn.cli import main
from emnist_cnn.data import load_split
from emnist_cnn.errors import DataError, ModelFileError
from emnist_cnn.recognition import Recognizer
from emnist_cnn.recognition.segment import MAX_MARKS, TooManyMarks, segment


def dot_grid(n: int, pitch: int = 8, dot: int = 3) -> Image.Image:
    """n×n black dots of dot×dot pixels on white: n² separate marks (the 1.4 KB image that held the server 123 s)."""
    img = np.full((n * pitch + pitch, n * pitch + pitch), 255, np.uint8)
    for i in range(n):
        for j in range(n):
            y, x = pitch + i * pitch, pitch + j * pitch
            img[y:y + dot, x:x + dot] = 0
    return Image.fromarray(img)


# ----------------------------------------------------------------------------------------------- denial of service
def test_a_dot_grid_is_refused_at_once(tmp_path, capsys):
    recognizer = Recognizer.load(random_model_dir(tmp_path / "model"))
    for n in (40, 60):
        start = time.monotonic()
        with pytest.raises(TooManyMarks, match=f"{n * n} separate marks, more than the {MAX_MARKS}"):
            recognizer.read(dot_grid(n))
        assert time.monotonic() - start < 2.0
    dot_grid(40).save(tmp_path / "grid.png")
    start = time.monotonic()
    assert main(["read", str(tmp_path / "grid.png"), "--model", str(tmp_path / "model")]) == 1
    assert "1600 separate marks" in capsys.readouterr().err and time.monotonic() - start < 5.0


def test_segmentation_is_near_linear_up_to_the_cap():
    # MAX_MARKS marks in one row: each its own character; the merge sweep must not restart after every merge
    ink = np.zeros((10, 6 * MAX_MARKS), np.float32)
    ink[2:8, ::6] = 255
    ink[2:8, 1::6] = 255
    start = time.monotonic()
    boxes, inks = segment(ink)
    assert len(boxes) == MAX_MARKS and time.monotonic() - start < 1.0
    # stacked parts still merge: a dot above a stroke (an i) is one character, two strokes side by side are two
    ink = np.zeros((40, 40), np.float32)
    ink[2:5, 5:8], ink[10:38, 5:8], ink[10:38, 25:28] = 255, 255, 255
    assert segment(ink)[0] == [(5, 2, 8, 38), (25, 10, 28, 38)]


@pytest.mark.parametrize("seed", range(4))
def test_random_noise_images_are_answered_quickly(tmp_path, seed):
    recognizer = Recognizer.load(random_model_dir(tmp_path / "model"))
    rng = np.random.default_rng(seed)
    noise = Image.fromarray((rng.random((300, 400)) < [0.02, 0.1, 0.3, 0.5][seed]).astype(np.uint8) * 255)
    start = time.monotonic()
    try:
        recognizer.read(noise)
    except emnist_cnn.ImageError:
        pass  # refused with a reason: as good as an answer
    assert time.monotonic() - start < 2.0


def test_a_read_over_its_time_budget_is_refused(tmp_path):
    recognizer = Recognizer.load(random_model_dir(tmp_path / "model"))
    with pytest.raises(emnist_cnn.ImageError, match="longer than its time budget"):
        recognizer.read(png(draw(SEVEN)), budget=0.0)


@pytest.fixture
def live_server(tmp_path, monkeypatch):
    """The app under uvicorn with the bounded protocol `serve` uses, on a free loopback port; short timeouts."""
    from emnist_cnn.serving import app as app_mod
    monkeypatch.setattr(app_mod, "HEADER_SECONDS", 1.0)
    monkeypatch.setattr(app_mod, "BODY_SECONDS", 1.0)
    app = app_mod.create_app(Recognizer.load(random_model_dir(tmp_path / "model")),
                             allowed_hosts=app_mod.served_hosts("127.0.0.1"))
    with serving(app, http=app_mod.bounded_http_protocol()) as port:
        yield port


def test_well_behaved_clients_stay_fast_while_others_send_worst_case_images(live_server):
    import httpx
    url = f"http://127.0.0.1:{live_server}/api/v1"
    grid, seven = png(dot_grid(60)), png(draw(SEVEN))
    stop, bad_status = threading.Event(), []

    def attacker():
        with httpx.Client() as c:
            while not stop.is_set():
                r = c.post(f"{url}/read", files={"file": ("g.png", grid, "image/png")})
                bad_status.append(r.status_code)

    attackers = [threading.Thread(target=attacker) for _ in range(2)]
    for t in attackers:
        t.start()
    latencies = []
    try:
        with httpx.Client() as c:
            for _ in range(40):
                start = time.monotonic()
                r = c.post(f"{url}/predict", files={"file": ("7.png", seven, "image/png")})
                latencies.append(time.monotonic() - start)
                assert r.status_code == 200
    finally:
        stop.set()
        for t in attackers:
            t.join(timeout=30)
    assert bad_status and set(bad_status) == {422}
    assert np.percentile(latencies, 99) < 1.0  # it was 121 s


def test_a_data_url_without_a_comma_is_422_and_the_connection_goes_on(live_server):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", live_server, timeout=10)
    for body, status in (({"image": "data:x"}, 422), ({"image": "data:image/png;base64,"}, 415),
                         ({"pixels": [[0] * 28] * 27 + [[255] * 28]}, 200)):
        conn.request("POST", "/api/v1/predict", json.dumps(body), {"content-type": "application/json"})
        reply = conn.getresponse()
        text = reply.read()
        assert reply.status == status, text  # the same keep-alive connection answers every request
    conn.close()


def test_only_the_hosts_the_server_was_started_for_are_answered(live_server):
    import httpx
    assert httpx.get(f"http://127.0.0.1:{live_server}/healthz").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{live_server}/healthz", headers={"host": "localhost"}).status_code == 200
    rebound = httpx.get(f"http://127.0.0.1:{live_server}/healthz", headers={"host": "evil.example"})
    assert rebound.status_code == 400


def test_slow_headers_and_slow_bodies_do_not_hold_a_connection(live_server):
    with socket.create_connection(("127.0.0.1", live_server), timeout=5) as s:
        s.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing more
        start = time.monotonic()
        assert s.recv(100) == b""  # closed by the server
        assert time.monotonic() - start < 4
    with socket.create_connection(("127.0.0.1", live_server), timeout=5) as s:
        s.sendall(b"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                  b"content-length: 1000\r\n\r\n{\"pix")
        start = time.monotonic()
        assert s.recv(100).startswith(b"HTTP/1.1 408")
        assert time.monotonic() - start < 4


# ----------------------------------------------------------------------------------------------- silent wrong answers
def test_a_model_without_normalize_is_refused_naming_the_file_and_field(tmp_path):
    model = random_model_dir(tmp_path / "model")
    meta = json.loads((model / "model.json").read_text())
    del meta["normalize"]
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"model\.json: field 'normalize' must be a dict, found nothing"):
        Recognizer.load(model)
    meta["normalize"] = {"mean": 0.5, "std": 0}
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="'std' > 0"):
        emnist_cnn.load_model(model)


# ----------------------------------------------------------------------------------------------- caches
@pytest.mark.parametrize("damage", ["empty", "flipped byte", "changed label", "header 28x27"])
def test_a_damaged_cache_is_detected_and_rebuilt(synth_dir, damage):
    truth = load_split("synth", str(synth_dir), download=False)
    cache = emnist_cnn.data.cache_dir() / "arrays"
    images = cache / "emnist-synth-train-images-idx3-ubyte.gz.npy"
    labels = cache / "emnist-synth-train-labels-idx1-ubyte.gz.npy"
    if damage == "empty":
        images.write_bytes(b"")
    elif damage == "flipped byte":
        raw = bytearray(images.read_bytes())
        raw[-100] ^= 0xFF
        images.write_bytes(bytes(raw))
    elif damage == "changed label":
        arr = np.load(labels)
        arr[0] = (arr[0] + 1) % 6
        np.save(labels, arr)
    else:
        raw = images.read_bytes()
        images.write_bytes(raw.replace(b"28, 28)", b"28, 27)", 1)[:-240])  # a consistent .npy of 28×27 images
        assert np.load(images).shape[1:] == (28, 27)
    again = load_split("synth", str(synth_dir), download=False)
    assert np.array_equal(again.train_images, truth.train_images)
    assert np.array_equal(again.train_labels, truth.train_labels)


def test_a_mapping_file_that_is_not_text_names_the_file(tmp_path):
    root = make_split(tmp_path / "data")
    (root / "emnist-synth-mapping.txt").write_bytes(b"0 97\n1 \xff\xfe\n")
    with pytest.raises(DataError, match=r"emnist-synth-mapping\.txt: not an EMNIST mapping file \(byte 7"):
        load_split("synth", str(root), download=False)


# ----------------------------------------------------------------------------------------------- run files
def test_resume_survives_a_torn_last_line_and_redoes_that_epoch(synth_dir, tmp_path, monkeypatch):
    import emnist_cnn.training.loop as loop
    cfg = small_config(synth_dir, tmp_path, epochs=3)
    full = emnist_cnn.train(cfg, progress=False, log=lambda *a: None)
    real_epoch = loop.train_one_epoch

    def killed_while_writing_epoch_3(*args, **kw):
        if args[6] == 2:  # the third epoch: as if killed while its metrics line was being written
            run, = (tmp_path / "torn").iterdir()
            with open(run / "metrics.jsonl", "a") as f:
                f.write('{"epoch": 3, "lr": 0.0002, "train_lo')
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kw)
    monkeypatch.setattr(loop, "train_one_epoch", killed_while_writing_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        emnist_cnn.train(cfg.replace(out_dir=str(tmp_path / "torn")), progress=False, log=lambda *a: None)
    monkeypatch.setattr(loop, "train_one_epoch", real_epoch)
    (run,) = (tmp_path / "torn").iterdir()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # was: "Expecting ',' delimiter", no file named
    rows, full_rows = ([json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()]
                       for r in (run, full))
    strip = lambda rs: [{k: v for k, v in r.items() if "second" not in k} for r in rs]  # noqa: E731
    assert strip(rows) == strip(full_rows)  # the torn epoch was trained again, exactly


def test_resume_errors_name_the_file(synth_dir, tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nonexistent")]) == 2
    assert f"--resume {tmp_path / 'nonexistent'}: no such run directory" in capsys.readouterr().err
    run = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    (run / "metrics.jsonl").rename(run / "metrics.moved")
    assert main(["train", "--resume", str(run)]) == 2
    assert f"{run / 'metrics.jsonl'}: missing" in capsys.readouterr().err
    (run / "metrics.moved").rename(run / "metrics.jsonl")
    import torch
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "ema": {}, "rng": torch.get_rng_state(), "epoch": 1,
                "best_val": 0.5}, run / "last.pt")
    assert main(["train", "--resume", str(run)]) == 2
    assert f"{run / 'last.pt'}: does not fit this run's model" in capsys.readouterr().err
    torch.save({"something": 1}, run / "last.pt")
    assert main(["train", "--resume", str(run)]) == 2
    assert "last.pt: not a training state of emnist-cnn (no best_val, ema, epoch" in capsys.readouterr().err
    (run / "config.json").unlink()
    assert main(["train", "--resume", str(run)]) == 2
    assert f"{run / 'config.json'}: missing" in capsys.readouterr().err


def make_run_dir(out_dir, barrier):
    from emnist_cnn.config import Config
    from emnist_cnn.training.loop import new_run_dir
    barrier.wait()
    return str(new_run_dir(Config(out_dir=out_dir, preset="same")))


def test_runs_started_at_the_same_instant_get_their_own_directories(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            dirs = pool.starmap(make_run_dir, [(str(tmp_path), barrier)] * 4)
    assert len(set(dirs)) == 4 and all(os.path.isdir(d) for d in dirs)


def test_every_run_file_has_the_same_mode(synth_dir, tmp_path):
    run = emnist_cnn.train(small_config(synth_dir, tmp_path, epochs=1), progress=False, log=lambda *a: None)
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.iterdir() if p.is_file()}
    assert len(set(modes.values())) == 1 and modes["model.safetensors"] == modes["config.json"], modes


# ----------------------------------------------------------------------------------------------- flags and inputs
@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "-1"], "batch_size: expected >= 1, found -1"),
    (["--batch-size", "0"], "batch_size: expected >= 1, found 0"),
    (["--epochs", "inf"], "epochs: expected a finite number, found inf"),
    (["--epochs", "0"], "epochs: expected > 0.0, found 0.0"),
    (["--val-fraction", "1.5"], "val_fraction: expected >= 0.0 and < 1.0, found 1.5"),
    (["--device", "cuda:99"], "device 'cuda:99': no such CUDA device here"),
    (["--device", "tpu"], "device 'tpu': expected auto, cpu, cuda, cuda:N or mps"),
    (["--architecture", "nope"], "unknown model 'nope'"),
])
def test_bad_flags_are_one_clear_line_and_write_nothing(synth_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "runs"
    rc = main(["train", "--split", "synth", "--data-dir", str(synth_dir), "--out-dir", str(out), "--quiet", *flags])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()  # validated before anything is written


def test_an_out_dir_that_is_a_file_is_a_clear_error(synth_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", "--split", "synth", "--data-dir", str(synth_dir), "--out-dir", str(tmp_path / "file"),
                 "--epochs", "1", "--quiet", "--device", "cpu"]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


@pytest.mark.parametrize("top_k", ["0", "-3", "7"])
def test_top_k_follows_one_rule_in_the_cli_and_the_server(tmp_path, capsys, top_k):
    from fastapi.testclient import TestClient

    from emnist_cnn.serving.app import create_app
    model = random_model_dir(tmp_path / "model")  # 6 classes
    draw(SEVEN).save(tmp_path / "7.png")
    assert main(["predict", str(tmp_path / "7.png"), "--model", str(model), "--top-k", top_k]) == 2
    assert f"top_k: expected an integer from 1 to 6, found {top_k}" in capsys.readouterr().err
    reply = TestClient(create_app(Recognizer.load(model))).post(
        f"/api/v1/predict?top_k={top_k}", files={"file": ("7.png", png(draw(SEVEN)), "image/png")})
    assert reply.status_code == 422 and "from 1 to 6" in reply.text


def test_predict_reports_each_path_and_goes_on(tmp_path, capsys):
    model = random_model_dir(tmp_path / "model")
    (tmp_path / "empty").mkdir()
    draw(SEVEN).save(tmp_path / "7.png")
    rc = main(["predict", str(tmp_path / "empty"), str(tmp_path / "missing.png"), str(tmp_path / "7.png"),
               "--model", str(model)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"{tmp_path / 'empty'}: a folder without images" in err
    assert f"{tmp_path / 'missing.png'}: no such file or folder" in err
    assert out.startswith(f"{tmp_path / '7.png'}  ")  # the good one is still answered
