"""A model trained on real EMNIST digits recognises digits drawn as pen strokes and digits on paper scans."""
import io

import numpy as np
import pytest
from helpers import draw, line_image, png
from PIL import Image
from real_model import DIGITS, digits_model_dir

from emnist_cnn.data import load_split
from emnist_cnn.recognition import Recognizer
from emnist_cnn.serving.app import create_app

pytestmark = [pytest.mark.realdata, pytest.mark.slow]  # the real model they share trains first


@pytest.fixture
def digits(real_data_dir):
    return Recognizer.load(digits_model_dir(real_data_dir))


def paper_scan(image_u8, scale, at, canvas=(160, 130)):
    """An EMNIST image as black ink on white paper, rescaled and placed off-centre."""
    ink = Image.fromarray(255 - image_u8).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    paper = Image.new("L", canvas, 255)
    paper.paste(ink, at)
    return png(paper)


def test_drawn_digits_are_recognised(digits):
    predicted = {d: digits.predict(draw(strokes, size=150, canvas=(300, 260), at=(60, 50)))[0][0]
                 for d, strokes in DIGITS.items()}
    assert predicted == {d: d for d in DIGITS}


def test_paper_scans_match_direct_evaluation(digits, real_data_dir):
    test = load_split("localdigits", real_data_dir, download=False, parts=("test",))
    images, labels = test.test_images[-400:], test.test_labels[-400:]  # not in the model's test subset
    rng = np.random.default_rng(0)
    scans = [paper_scan(im, int(rng.integers(1, 5)), (int(rng.integers(0, 40)), int(rng.integers(0, 15))))
             for im in images]
    direct = np.mean([c[0][0] == str(y) for c, y in zip(digits.classify(images, 1), labels)])
    via_files = np.mean([p[0][0] == str(y) for p, y in zip(digits.predict_batch(scans, 1), labels)])
    assert direct > 0.9 and abs(direct - via_files) <= 0.02


def test_read_a_number(digits):
    reading = digits.read(line_image([DIGITS[d] for d in "1740"], size=120, gap=50))
    assert reading.text == "1740" and min(c.confidence for c in reading.characters) > 0.5


def test_api_with_a_real_model(digits):
    from fastapi.testclient import TestClient
    client = TestClient(create_app(digits))
    buf = io.BytesIO()
    line_image([DIGITS["4"], DIGITS["2"]]).save(buf, "PNG")
    assert client.post("/api/v1/read", files={"file": ("n.png", buf.getvalue(), "image/png")}).json()["text"] == "42"
    seven = png(draw(DIGITS["7"]))
    top = client.post("/api/v1/predict", files={"file": ("7.png", seven, "image/png")}).json()["predictions"][0]
    assert top["character"] == "7" and top["probability"] > 0.5
