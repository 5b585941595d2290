"""Checks on the real EMNIST files named by EMNIST_DATA_DIR (mandatory in CI: .ci/run exports it)."""
import json

import numpy as np
import pytest
import torch

from emnist_cnn import train
from emnist_cnn.config import get_preset
from emnist_cnn.data import build_dataset, load_split

pytestmark = pytest.mark.realdata


def ink_profile(mean_image):
    """(ink in the top third, ink in the bottom third, peak column share, peak row share)."""
    rows, cols = mean_image.sum(1), mean_image.sum(0)
    return mean_image[:9].sum(), mean_image[-9:].sum(), cols.max() / cols.sum(), rows.max() / rows.sum()


def test_official_byclass_test_upright(real_data_dir):
    s = load_split("byclass", real_data_dir, download=False, parts=("test",))
    assert s.test_images.shape == (116_323, 28, 28)
    assert len(s.classes) == 62 and "".join(s.classes[:12]) == "0123456789AB" and s.classes[-1] == "z"
    assert set(np.unique(s.test_labels)) == set(range(62))
    seven = s.test_images[s.test_labels == s.classes.index("7")].astype(float).mean(0)
    top, bottom, _, _ = ink_profile(seven)
    assert top > 1.5 * bottom  # a 7 has its bar on top when upright (transposed, the bar would be on the left)
    one = s.test_images[s.test_labels == s.classes.index("1")].astype(float).mean(0)
    _, _, col_peak, row_peak = ink_profile(one)
    assert col_peak > 1.5 * row_peak  # a 1 is a vertical stroke


def test_official_mnist_test_and_label_files(real_data_dir):
    s = load_split("mnist", real_data_dir, download=False, parts=("test",))
    assert s.test_images.shape == (10_000, 28, 28) and np.bincount(s.test_labels).tolist() == [1000] * 10
    assert abs(s.test_images.mean() / 255 - 0.1735) < 0.001


@pytest.mark.parametrize("split, train, test, classes", [
    ("localbalanced", 36_190, 6_110, 47), ("localdigits", 105_000, 17_500, 10), ("localbymerge", 220_952, 36_846, 47)])
def test_local_corpora(real_data_dir, split, train, test, classes):
    s = load_split(split, real_data_dir, download=False)
    assert (len(s.train_labels), len(s.test_labels), len(s.classes)) == (train, test, classes)


def test_local_balanced36_resplit(real_data_dir):
    d = build_dataset("localbalanced", real_data_dir, classes="0-35", resplit="0.7,0.2,0.1")
    assert "".join(d.classes) == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert (len(d.train[1]), len(d.val[1]), len(d.test[1])) == (22_680, 6_480, 3_240)  # 900 per class


@pytest.mark.slow
def test_tiny_model_learns_local_digits(real_data_dir, tmp_path):
    cfg = get_preset("reference-digits").replace(split="localdigits", epochs=1, out_dir=str(tmp_path),
                                                     report=False)
    run = train(cfg, progress=False, log=lambda *a: None)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 17_500 and metrics["accuracy"] > 0.93


@pytest.mark.parametrize("name, split, floor", [("emnist-cnn/digits", "localdigits", 0.995),
                                                ("emnist-cnn/bymerge47", "localbymerge", 0.89)])
def test_shipped_pretrained_models(real_data_dir, name, split, floor):
    from emnist_cnn.evaluation import evaluate
    from emnist_cnn.models import load_model, pretrained
    model, meta = load_model(name)
    assert meta["command"].startswith("emnist-cnn train ") and meta["dataset"]["name"] == split
    s = load_split(split, real_data_dir, download=False, parts=("test",))
    images, labels = torch.from_numpy(np.array(s.test_images[:3000])), torch.from_numpy(s.test_labels[:3000])
    metrics = evaluate(model, images, labels, s.classes, **meta["normalize"])
    assert meta["classes"] == s.classes and metrics["accuracy"] > floor
    assert name in pretrained.names()


def test_shipped_line_models_read_test_lines(real_data_dir):
    # lines composed from localbymerge's test characters (no shipped model trained on them), read as a user
    # reads a file: lines47 for words, lines10 where the charset is digits. Floors well under benchmarks/read.py's
    import io

    from PIL import Image

    from emnist_cnn.data.lines import SPACE, SPACINGS, CharacterBank, batch_of_lines
    from emnist_cnn.recognition import Recognizer
    s = load_split("localbymerge", real_data_dir, download=False, parts=("test",))
    bank = CharacterBank(torch.from_numpy(np.array(s.test_images)), s.test_labels, [*s.classes, SPACE])
    reader = Recognizer.load()

    def exact(kind: str, charset: str) -> tuple[float, set[str]]:
        batch = batch_of_lines(bank, 48, seed=5, index=0, spacing=SPACINGS["tight"], kinds=(kind,))
        right, by = 0, set()
        for image, width, text in zip(batch.images, batch.widths, batch.texts):
            ink = np.uint8(255 - 255 * image[0, :, :int(width)].clamp(0, 1).numpy())
            buf = io.BytesIO()
            Image.fromarray(np.pad(ink, 20, constant_values=255)).resize((3 * int(width) + 120, 216)).save(buf, "PNG")
            reading = reader.read(buf.getvalue(), charset=charset)
            right += reading.text.lower() == text.lower()
            by.add(reading.read_by)
        return right / len(batch.texts), by

    words, by_words = exact("words", "letters")
    digits, by_digits = exact("digits", "digits")
    assert by_words == {"emnist-cnn/lines47"} and by_digits == {"emnist-cnn/lines10"}
    assert words >= 0.8 and digits >= 0.85, (words, digits)
