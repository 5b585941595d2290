"""Reading lines with the shipped line model, through Python, the CLI and REST: words and numbers drawn with pen
strokes (not EMNIST), spaced, touching, constrained, on several lines."""
import json

import numpy as np
import pytest
from helpers import LETTERS, line_image, png
from PIL import Image
from real_model import DIGITS

from emnist_cnn.data.fonts import written as hershey_line
from emnist_cnn.errors import ConfigError
from emnist_cnn.recognition import Recognizer

GLYPHS = {**LETTERS, **{d: s for d, s in DIGITS.items()}}


@pytest.fixture(scope="module")
def reader():
    return Recognizer.load()  # the default: the character model for predict, the line model for read


def written(text: str, gap: int = 30, size: int = 90) -> Image.Image:
    return line_image([GLYPHS[c] for c in text], gap=gap, size=size)


def test_the_default_recognizer_reads_lines(reader):
    assert reader.lines is not None and reader.lines.name == "emnist-cnn/lines47"
    reading = reader.read(png(written("HOTEL")))
    assert reading.reader == "lines" and reading.text.upper() == "HOTEL"
    line = reading.lines[0]
    assert [c.character.upper() for c in reading.characters] == list("HOTEL")
    # boxes follow the writing left to right, inside the image, side by side, each as wide as a letter is
    boxes = [c.box for c in reading.characters]
    assert all(0 <= b[0] < b[2] <= 5 * 120 + 60 for b in boxes)
    assert all(a[2] <= b[0] + 1 for a, b in zip(boxes, boxes[1:]))
    assert all(b[2] - b[0] >= 0.3 * 90 for b in boxes)
    assert line.alternatives[0][0] == reading.text and 1 <= len(line.alternatives) <= 3
    assert abs(sum(p for _, p in line.alternatives) - 1) < 1e-6


def test_a_narrow_first_character_is_read(reader):
    # a bare 1 at the very start of a line was dropped ("1740" -> "740", "1 7" for 17) until the line form got
    # blank columns before it (recognition/lines.py LEAD)
    for gap in (20, 40):
        assert reader.read(png(written("1740", gap=gap)), charset="digits").text == "1740", gap
    assert reader.read(png(written("17", gap=40)), charset="digits").text == "17"


def test_the_model_reads_each_line_with_blank_after_it_and_only_its_own_steps(reader):
    # lines of different widths in one batch: each gets its own width // stride steps, whatever the padding after
    # it (at least TRAIL columns: in training a line is followed by its batch's padding). Steps over the padding
    # are no reading: the model was never taught to keep quiet there (read with them, "3235" came out "3235 1")
    from emnist_cnn.models.line_models import greedy
    from emnist_cnn.recognition import lines as reading_lines
    lines = reader.lines
    form = np.zeros((32, 90), np.float32)
    form[6:26, 10:14] = form[6:26, 40:44] = form[6:26, 70:74] = 1.0  # three bars, wide apart: 1 1 1
    short = form[:, :50]
    alone, together = lines.log_probs([short])[0], lines.log_probs([form, short])[1]
    assert len(alone) == len(together) == 50 // lines.model.stride
    # more padding after it changes little: the same best path, probabilities within 0.1
    assert greedy(alone, lines.blank) == greedy(together, lines.blank) == [1, lines.index[" "], 1]
    assert np.allclose(np.exp(alone), np.exp(together), atol=0.1)
    assert reading_lines.TRAIL >= lines.model.stride


def test_touching_characters_are_read_where_components_cannot(reader):
    image = png(written("HOTEL", gap=-8))  # each letter's ink reaches into the next
    assert reader.read(image, reader="components").text.upper() != "HOTEL"
    assert reader.read(image).text.upper() == "HOTEL"


def test_a_number_with_the_charset_and_a_pattern(reader):
    image = png(written("4170", gap=20))
    assert reader.read(image, charset="digits").text == "4170"
    assert reader.read(image, pattern="[0-9]{4}").text == "4170"
    assert all(c.character.isdigit() for c in reader.read(image, charset="digits").characters)
    assert reader.read(image, pattern="[A-Z]{6}").text == ""  # no reading can match: nothing, not a guess


def test_several_lines_are_read_top_to_bottom(reader):
    top, bottom = written("NOTE", gap=20), written("4170", gap=20)
    page = Image.new("L", (max(top.width, bottom.width), top.height + bottom.height + 40), 255)
    page.paste(top, (0, 0))
    page.paste(bottom, (0, top.height + 40))
    reading = reader.read(png(page), charset=None)
    assert len(reading.lines) == 2 and reading.lines[0].box[1] < reading.lines[1].box[1]
    assert reading.text.upper().split("\n") == ["NOTE", "4170"]


def test_bad_read_options_are_clear_errors(reader, tmp_path):
    image = png(written("TEN"))
    with pytest.raises(ConfigError, match="reader: expected one of auto, lines, components"):
        reader.read(image, reader="ocr")
    with pytest.raises(ConfigError, match="lm_weight: expected a number >= 0"):
        reader.read(image, lm_weight=-1)
    with pytest.raises(ConfigError, match="not a regular expression"):
        reader.read(image, pattern="([0-9]")
    with pytest.raises(ConfigError, match="charset 'digts': not a name"):
        reader.read(image, charset="digts")
    with pytest.raises(ConfigError, match="lexicon .*missing.txt: unreadable") as e:
        reader.read(image, lexicon=str(tmp_path / "missing.txt"))
    assert e.value.field == "lexicon"  # every read option's error names its field (REST's 422 loc)
    with pytest.raises(ConfigError, match="budget: expected seconds >= 0") as e:
        reader.read(image, budget=-1)
    assert e.value.field == "budget"
    # checked once, read many times: what the CLI and the server do
    options = reader.read_options(charset="digits", alternatives=2)
    assert reader.read_with(png(written("4170", gap=20)), options).text == "4170"
    assert all(len(line.alternatives) <= 2 for line in reader.read_with(png(written("17", gap=20)), options).lines)
    character_only = Recognizer.load("emnist-cnn/digits")
    assert character_only.lines is None and character_only.read(png(written("4170", gap=30))).reader == "components"
    with pytest.raises(ConfigError, match="has no line model"):
        character_only.read(image, reader="lines")


def test_a_users_lexicon_reads_codes(reader, tmp_path):
    lexicon = tmp_path / "codes.txt"
    lexicon.write_text("HOTEL\nNOTE\n")
    assert reader.read(png(written("HOTEL")), lexicon=str(lexicon)).text.upper() == "HOTEL"


def test_a_charset_of_digits_is_read_by_the_digit_line_model(reader):
    assert [r.name for r in reader.charset_lines] == ["emnist-cnn/lines10"]
    image = png(written("4170", gap=20))
    for charset, by in ((None, "lines47"), ("digits", "lines10"), ("=0147", "lines10"), ("alnum", "lines47"),
                        ("upper", "lines47")):
        assert reader.read(image, charset=charset).read_by == f"emnist-cnn/{by}", charset
    numbers = reader.read(image, charset="=0147")
    assert numbers.text == "4170" and {c for ch in numbers.characters for c, _ in ch.top} <= set("0147")
    assert reader.read(image, reader="components").read_by == reader.name
    # a line model chosen by name is the only one: nothing is swapped in behind the caller's back
    chosen = Recognizer.load(lines="emnist-cnn/lines47")
    assert chosen.charset_lines == [] and chosen.read(image, charset="digits").read_by == "emnist-cnn/lines47"
    with pytest.raises(ConfigError, match="charset"):
        reader.read(image, charset="digts")


def test_read_from_the_cli(tmp_path, capsys):
    from emnist_cnn.cli import main
    written("HOTEL").save(tmp_path / "hotel.png")
    assert main(["read", str(tmp_path / "hotel.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    result = out[str(tmp_path / "hotel.png")]
    assert result["reader"] == "lines" and result["text"].upper() == "HOTEL" and len(result["lines"]) == 1
    assert main(["read", str(tmp_path / "hotel.png"), "--reader", "components"]) == 0
    assert main(["read", str(tmp_path / "hotel.png"), "--pattern", "(["]) == 2
    assert "not a regular expression" in capsys.readouterr().err


def test_read_over_rest(reader):
    from fastapi.testclient import TestClient

    from emnist_cnn.serving.app import create_app
    client = TestClient(create_app(reader))
    image = png(written("4170", gap=20))
    reply = client.post("/api/v1/read?charset=digits", files={"file": ("n.png", image, "image/png")})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["reader"] == "lines" and body["text"] == "4170" and len(body["lines"]) == 1
    assert body["read_by"] == "emnist-cnn/lines10"  # the digit reader, for charset digits
    assert body["lines"][0]["alternatives"][0]["text"] == "4170"
    for query, field in (("pattern=(%5B", "pattern"), ("reader=ocr", "reader"), ("charset=digts", "charset"),
                         ("lm_weight=-1", "lm_weight"), ("alternatives=0", "alternatives")):
        reply = client.post(f"/api/v1/read?{query}", files={"file": ("n.png", image, "image/png")})
        assert reply.status_code == 422, (query, reply.text)
        assert reply.json()["detail"][0]["loc"] == ["query", field], reply.json()
    reply = client.post("/api/v1/read?reader=components", files={"file": ("n.png", image, "image/png")})
    assert reply.status_code == 200 and reply.json()["reader"] == "components"


def test_a_fine_pen_is_read_as_a_broad_one(reader):
    # a stroke font (other strokes than EMNIST's) drawn with a pen 3% of the capital height, and with one 9%: the
    # fine strokes are widened before reading. Texts whose readings lead by a wide margin, so that another CPU's
    # rounding cannot turn them ("2358" at pen 2 led "7358" by 0.4 before benchmarks/read_foreign.py and the tests
    # drew with one renderer, data/fonts.py, and trailed it after)
    from unittest.mock import patch

    from emnist_cnn.data.lines import line_form
    from emnist_cnn.recognition import lines as reading_lines
    for pen in (2, 6):
        read = [reader.read(png(hershey_line(t, pen=pen))).text.lower() for t in ("HOTEL", "yellow", "7342", "silver")]
        assert read == ["hotel", "yellow", "7342", "silver"], pen
    # the widening is what reads the fine pen's 2 (as drawn: 7347, with a lead of 0.8)
    with patch.object(reading_lines, "line_form_of_writing", line_form):
        assert reader.read(png(hershey_line("7342", pen=2))).text != "7342"


def test_single_characters_still_go_to_the_character_model(reader):
    seven = png(written("7", gap=0))
    assert reader.predict(seven, top_k=1)[0][0] == "7"
    # the character model's probabilities, as before (the line model's would differ)
    from emnist_cnn.recognition.recognizer import character_form
    expected = reader.probabilities(character_form(seven)[None])[0]
    assert reader.predict(seven, top_k=1)[0][1] == pytest.approx(float(expected.max()), rel=1e-5)
