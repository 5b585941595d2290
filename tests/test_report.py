"""The HTML report: generated at the end of a tiny synthetic run, checked as files and in headless Chromium."""
import base64
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import make_split, small_config
from PIL import Image

from emnist_cnn import train
from emnist_cnn.cli import main
from emnist_cnn.config import Config
from emnist_cnn.data import Dataset
from emnist_cnn.evaluation.report import ReportError, calibration, confused_pairs, write_report

SECTIONS = ["data", "training", "results", "confusion", "roc", "calibration", "errors", "network"]
ALWAYS = ["class_distribution", "pixel_intensity", "samples", "training", "confusion_counts", "confusion_normalized",
          "roc", "pr", "calibration", "filters", "attribution",
          "activations_features_0_0", "activations_features_1_0", "activations_features_2_0"]  # cnn3: 3 convs
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch cnn3 run on synthetic data and its report (what `emnist-cnn train` writes after training)."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMNIST_CNN_CACHE", str(root / "cache"))
        mp.delenv("EMNIST_DATA_DIR", raising=False)
        cfg = small_config(make_split(root / "data"), root, epochs=2, report=True)
        run_dir = train(cfg, progress=False, log=lambda *a: None)
        write_report(run_dir, log=lambda *a: None)
        return run_dir


def read(run_dir):
    return (run_dir / "report" / "index.html").read_text(encoding="utf-8"), \
        json.loads((run_dir / "report" / "report.json").read_text())


def test_every_section_and_figure_is_there_and_every_png_is_valid(run):
    page, summary = read(run)
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    metrics = json.loads((run / "metrics.json").read_text())
    expected = ALWAYS + (["confused_pairs", "errors"] if metrics["accuracy"] < 1 else [])
    assert sorted(summary["figures"]) == sorted(f"{name}.png" for name in expected)
    for name in summary["figures"]:
        png = (run / "report" / name).read_bytes()
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and min(im.size) >= 100, name
            im.verify()
        embedded = re.search(rf'<figure id="fig-{name[:-4]}"><img src="data:image/png;base64,([^"]+)"', page)
        assert embedded and base64.b64decode(embedded.group(1)) == png, f"{name} is not embedded as written"
    assert "features.2.0 (before its non-linearity): the 16 strongest of 128 channels for each input." in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", page), "the page refers to an outside resource"


def test_numbers_are_evaluates(run):
    page, summary = read(run)
    metrics = json.loads((run / "metrics.json").read_text())  # written by finish() with the same evaluate()
    for key in ("n", "accuracy", "top5_accuracy", "loss", "f1_macro", "precision_weighted", "roc_auc_macro"):
        assert summary[key] == pytest.approx(metrics[key]), key
    assert f"<b>{metrics['accuracy']:.4f}</b>accuracy" in page
    table = page.split('id="per-class"')[1].split("<tbody>")[1].split("</tbody>")[0]
    rows = [re.findall(r'data-value="([^"]*)">([^<]*)<', tr) for tr in re.findall(r"<tr>(.*?)</tr>", table)]
    assert len(rows) == len(metrics["per_class"]) == 6
    for row, want in zip(rows, metrics["per_class"]):
        assert row[0][1] == want["class"]
        assert [float(v) for v, _ in row[1:5]] == pytest.approx([want[k] for k in ("precision", "recall", "f1",
                                                                                   "support")])
    cm = np.array(metrics["confusion_matrix"])
    assert [(p["count"]) for p in summary["confused_pairs"]] == sorted(
        (cm - np.diag(np.diag(cm)))[cm - np.diag(np.diag(cm)) > 0].tolist(), reverse=True)[:15]
    assert 0 <= summary["ece"] <= 1 and summary["split"] == "test" and summary["kept_epoch"] in (1, 2)


def test_calibration_error_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    # bin at 0.9: accuracy 1/2, gap 0.4, half the predictions; bin at 0.6: accuracy 1, gap 0.4, the other half
    cal = calibration(probs, labels, bins=10)
    assert cal["ece"] == pytest.approx(0.4)
    assert cal["count"].sum() == 4 and cal["count"][8] == 2 and cal["count"][5] == 2
    assert calibration(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1]))["ece"] == pytest.approx(0.0)


def test_confused_pairs_largest_off_diagonal_first():
    cm = np.array([[50, 2, 0], [3, 40, 1], [0, 0, 90]])
    assert confused_pairs(cm) == [(1, 0, 3), (0, 1, 2), (1, 2, 1)]
    assert confused_pairs(np.diag([5, 5])) == []


def test_no_report_flag_and_report_command(synth_dir, tmp_path, capsys):
    assert Config().report  # training writes the report unless told not to
    out = tmp_path / "runs"
    assert main(["train", "--preset", "reference-digits", "--split", "synth", "--data-dir", str(synth_dir),
                 "--epochs", "1", "--val-fraction", "0.2", "--out-dir", str(out), "--quiet",
                 "--no-report", "--device", "cpu"]) == 0
    (run_dir,) = out.iterdir()
    assert not (run_dir / "report").exists()
    assert main(["report", str(run_dir), "--split", "val"]) == 0
    page, summary = read(run_dir)
    assert summary["split"] == "val" and summary["n"] == 48
    assert "features.0 (before its non-linearity): all 2 channels." in page  # tiny-cnn: 2 and 4 channels
    assert "features.3 (before its non-linearity): all 4 channels." in page
    # the precision the run used is shown twice: as configured and as resolved in the Environment table
    assert page.count("<tr><th>precision</th><td>fp32</td></tr>") == 2


def test_bad_input_is_a_clear_error(run, tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert f"{tmp_path}: not a run directory (no config.json)" in capsys.readouterr().err
    classes = list("abcdef")
    empty = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
    no_test = Dataset("synth", classes, empty, empty, None)
    with pytest.raises(ReportError, match="dataset synth has no test part"):
        write_report(run, "test", data=no_test, log=lambda *a: None)
    with pytest.raises(ReportError, match="model's classes 'abcdef' differ from the data's 'abcdeg'"):
        write_report(run, data=Dataset("other", list("abcdeg"), empty, None, empty), log=lambda *a: None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ReportError, match="broken: invalid JSON in config.json"):
        write_report(broken)


def test_report_in_headless_chromium(run):
    if not Path(CHROMIUM).is_file():
        message = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright
    url = (run / "report" / "index.html").as_uri()
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
            assert page.evaluate("document.images.length") >= len(ALWAYS)

            def column(k, as_text=False):
                return page.eval_on_selector_all(
                    "#per-class tbody tr", f"rows => rows.map(r => r.cells[{k}]"
                    + (".textContent)" if as_text else ".dataset.value)"))
            assert "".join(column(0, True)) == "abcdef"
            page.click("#per-class th:nth-child(1)")  # already in class order: ascending keeps it
            page.click("#per-class th:nth-child(1)")
            assert "".join(column(0, True)) == "fedcba"
            assert page.get_attribute("#per-class th:nth-child(1)", "aria-sort") == "descending"
            page.click("#per-class th:nth-child(4)")  # F1, ascending
            f1 = [float(v) for v in column(3)]
            assert f1 == sorted(f1)
            assert page.get_attribute("#per-class th:nth-child(4)", "aria-sort") == "ascending"
            assert page.get_attribute("#per-class th:nth-child(1)", "aria-sort") is None
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith("data:")] == [url], "requests other than the file itself"
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
