"""Recognizer (predict, predict_batch, read), segmentation and the predict/read commands, on small models."""
import json

import numpy as np
import pytest
import torch
from helpers import SEVEN, draw, line_image, png, random_model_dir
from PIL import Image

from emnist_cnn.cli import main
from emnist_cnn.data import preprocess
from emnist_cnn.errors import ConfigError, ModelFileError
from emnist_cnn.models.pretrained import DEFAULT as DEFAULT_MODEL
from emnist_cnn.recognition import Recognizer, TorchBackend
from emnist_cnn.recognition.segment import segment


@pytest.fixture
def recognizer(tmp_path):
    return Recognizer.load(random_model_dir(tmp_path / "model"))



def test_predict_is_topk_of_softmax(recognizer, tmp_path):
    top = recognizer.predict(draw(SEVEN), top_k=6)
    assert [c for c, _ in top] and sorted(c for c, _ in top) == list("abcdef")
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
    x = torch.from_numpy(preprocess.to_emnist(draw(SEVEN))).float()[None, None] / 255
    expected = torch.softmax(recognizer.backend.model((x - 0.5) / 0.5), 1)[0]
    assert probs[0] == pytest.approx(expected.max().item(), rel=1e-5)
    assert recognizer.classes[int(expected.argmax())] == top[0][0]
    (tmp_path / "seven.png").write_bytes(png(draw(SEVEN)))
    batch = recognizer.predict_batch([tmp_path / "seven.png", png(draw([[(0, 0), (1, 1)]])), draw(SEVEN)], top_k=2)
    assert len(batch) == 3 and batch[0] == batch[2] and len(batch[1]) == 2
    assert batch[0][0][0] == top[0][0]


def test_recognizer_accepts_any_backend(recognizer):
    """The server and Recognizer only need meta, classes and logits(): e.g. an ONNX Runtime backend."""
    class Doubled:
        meta, classes = recognizer.backend.meta, recognizer.classes

        def logits(self, batch):
            return 2 * recognizer.backend.logits(batch)
    other = Recognizer(Doubled(), name="doubled")
    img = draw(SEVEN)
    assert other.predict(img)[0][0] == recognizer.predict(img)[0][0]
    assert other.predict(img)[0][1] > recognizer.predict(img)[0][1]


def test_segment_merges_parts_drops_specks_and_orders_left_to_right():
    ink = np.zeros((100, 300), np.float32)
    ink[40:90, 200:210] = 255   # stem of an i (drawn first, on the right)
    ink[20:30, 200:210] = 255   # its dot
    ink[40:90, 20:60] = 255     # a block on the left
    ink[40:90, 100:110] = 200   # a stroke broken in two ...
    ink[60:90, 104:116] = 200   # ... overlapping pieces
    ink[5, 5] = 255             # a speck
    boxes, inks = segment(ink)
    assert boxes == [(20, 40, 60, 90), (100, 40, 116, 90), (200, 20, 210, 90)]
    assert [i.shape for i in inks] == [(50, 40), (50, 16), (70, 10)]
    assert inks[2][:10].sum() > 0 and inks[2][10:20].sum() == 0  # the dot kept, the gap empty


def test_read_finds_each_character_with_boxes_and_spaces(recognizer):
    slash, bar, seven = [[(0, 1), (0.6, 0)]], [[(0.5, 0), (0.5, 1)]], SEVEN
    word = line_image([slash, bar, seven])
    reading = recognizer.read(word)
    assert len(reading.characters) == 3 and len(reading.text) == 3 and " " not in reading.text
    xs = [c.box[0] for c in reading.characters]
    assert xs == sorted(xs) and all(c.box[2] - c.box[0] > 5 for c in reading.characters)
    singles = [recognizer.predict(line_image([g]))[0][0] for g in (slash, bar, seven)]
    assert reading.text == "".join(singles)  # each character goes through the same preprocessing
    spaced = recognizer.read(line_image([slash, bar], gap=160))
    assert spaced.text == singles[0] + " " + singles[1]
    big = word.resize((word.width * 4, word.height * 4))  # beyond the working size: boxes in the original pixels
    assert [c.box[0] // 4 for c in recognizer.read(big).characters] == pytest.approx(xs, abs=3)


def test_read_blank_is_an_error(recognizer):
    with pytest.raises(preprocess.BlankImage):
        recognizer.read(Image.new("L", (300, 100), 255))


def test_default_model_is_shipped_and_recognises_a_drawing(capsys, tmp_path):
    recognizer = Recognizer.load(DEFAULT_MODEL)  # emnist-cnn/bymerge47, inside the package
    assert len(recognizer.classes) == 47 and "".join(recognizer.classes[:12]) == "0123456789AB"
    (tmp_path / "a.png").write_bytes(png(draw(SEVEN)))
    assert main(["predict", str(tmp_path / "a.png"), "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[str(tmp_path / "a.png")]
    assert top[0]["character"] == "7" and len(top) == 5
    with pytest.raises(ModelFileError, match="pretrained: emnist-cnn/bymerge47, emnist-cnn/digits"):
        Recognizer.load("emnist-cnn/nope")


def test_cli_predict_and_read(tmp_path, capsys):
    model = random_model_dir(tmp_path / "model")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(png(draw(SEVEN)))
    draw([[(0, 0), (1, 1)]]).save(folder / "b.jpg")
    (folder / "blank.png").write_bytes(png(Image.new("L", (50, 50), 255)))
    (folder / "notes.txt").write_text("not an image, not listed")
    rc = main(["predict", str(folder), "--model", str(model), "--top-k", "3", "--json"])
    out, err = capsys.readouterr()
    assert rc == 1 and "blank.png: no ink found" in err  # reported; the other images still answered
    result = json.loads(out)
    assert sorted(result) == [str(folder / "a.png"), str(folder / "b.jpg")]
    assert all(len(v) == 3 and set(v[0]) == {"character", "probability"} for v in result.values())
    assert result[str(folder / "a.png")][0]["character"] == Recognizer.load(model).predict(folder / "a.png")[0][0]
    assert main(["predict", str(folder / "a.png"), "--model", str(model)]) == 0
    assert capsys.readouterr().out.startswith(str(folder / "a.png") + "  ")
    line_image([SEVEN, [[(0.5, 0), (0.5, 1)]]]).save(tmp_path / "word.png")
    assert main(["read", str(tmp_path / "word.png"), "--model", str(model), "--json"]) == 0
    reading = json.loads(capsys.readouterr().out)[str(tmp_path / "word.png")]
    assert len(reading["text"]) == 2 and len(reading["characters"]) == 2 and len(reading["characters"][0]["box"]) == 4
    assert main(["predict", str(tmp_path / "nope.png"), "--model", str(model)]) == 1  # reported, like a bad image
    assert "nope.png: no such file or folder" in capsys.readouterr().err


def test_torch_backend_logits_shape(tmp_path):
    backend = TorchBackend.load(random_model_dir(tmp_path / "m", classes="xyz"))
    assert backend.classes == list("xyz")
    assert backend.logits(np.zeros((4, 1, 28, 28), np.float32)).shape == (4, 3)


# ----------------------------------------------------------------------------------------------- charsets
def test_charsets_constrain_and_renormalise(tmp_path):
    from emnist_cnn.recognition.charset import allowed, characters
    r = Recognizer.load(random_model_dir(tmp_path / "model", classes="01abAB"))
    image = png(draw(SEVEN))
    full = dict(r.predict(image, top_k=6))
    digits = r.predict(image, top_k=6, charset="digits")
    assert [c for c, _ in digits] == sorted("01", key=lambda c: -full[c]) and len(digits) == 2  # fewer allowed
    assert sum(p for _, p in digits) == pytest.approx(1.0)
    assert digits[0][1] == pytest.approx(full[digits[0][0]] / (full["0"] + full["1"]))
    assert {c for c, _ in r.predict(image, top_k=6, charset="upper")} == {"A", "B"}
    assert {c for c, _ in r.predict(image, top_k=6, charset="=a0")} == {"a", "0"}  # a literal set
    assert characters("0123456789ABCDEF") == "0123456789ABCDEF"
    # merged classes count for both cases: ByMerge's 'C' is c and C, so lowercase 'c' allows it
    assert list(allowed(list("0Cab"), "lower")) == [False, True, True, True]
    assert list(allowed(list("0Cab"), "=c")) == [False, True, False, False]
    with pytest.raises(ConfigError, match="charset 'digts': not a name"):
        r.predict(image, charset="digts")
    with pytest.raises(ConfigError, match="charset 'XYZ': none of its characters is a class of this model"):
        r.predict(image, charset="XYZ")
    reading = r.read(png(line_image([SEVEN, SEVEN])), charset="digits")
    assert len(reading.characters) == 2 and all(c.character in "01" for c in reading.characters)


def test_charset_in_the_cli_and_the_rest_api(tmp_path, capsys):
    from fastapi.testclient import TestClient

    from emnist_cnn.serving.app import create_app
    model = random_model_dir(tmp_path / "model", classes="01abAB")
    draw(SEVEN).save(tmp_path / "7.png")
    assert main(["predict", str(tmp_path / "7.png"), "--model", str(model), "--charset", "digits", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)[str(tmp_path / "7.png")]
    assert {a["character"] for a in answer} == {"0", "1"}
    assert main(["predict", str(tmp_path / "7.png"), "--model", str(model), "--charset", "XYZ"]) == 2
    assert "none of its characters is a class of this model" in capsys.readouterr().err
    client = TestClient(create_app(Recognizer.load(model)))
    files = {"file": ("7.png", png(draw(SEVEN)), "image/png")}
    ok = client.post("/api/v1/predict?charset=upper&top_k=6", files=files)
    assert ok.status_code == 200 and {p["character"] for p in ok.json()["predictions"]} == {"A", "B"}
    for bad in ("digts", "XYZ"):
        reply = client.post(f"/api/v1/predict?charset={bad}", files=files)
        assert reply.status_code == 422 and "charset" in reply.text
    read = client.post("/api/v1/read?charset=digits", files={"file": ("w.png", png(line_image([SEVEN])), "image/png")})
    assert read.status_code == 200 and read.json()["text"] in ("0", "1")
