"""The web page in headless Chromium (Playwright): draw digits with mouse strokes, see the right prediction.

Needs Debian's /usr/bin/chromium: skipped without it locally, a failure in CI (.ci/run installs it).
"""
import os
from pathlib import Path

import pytest
from helpers import serving
from real_model import DIGITS, digits_model_dir

from emnist_cnn.recognition import Recognizer
from emnist_cnn.serving.app import create_app

pytestmark = [pytest.mark.realdata, pytest.mark.slow]  # the real model they share trains first
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def server_url(real_data_dir):
    with serving(create_app(Recognizer.load(digits_model_dir(real_data_dir)))) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing (CI installs Debian's chromium package)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser.new_page(viewport={"width": 1000, "height": 720})
        browser.close()


def stroke_on(page, canvas, strokes, left=0.2, top=0.15, size=0.7):
    """Draw unit-coordinate strokes with the mouse into the canvas region (fractions of its width/height)."""
    box = page.locator(canvas).bounding_box()
    side = size * box["height"]
    for s in strokes:
        xy = [(box["x"] + left * box["width"] + x * side, box["y"] + top * box["height"] + y * side) for x, y in s]
        page.mouse.move(*xy[0])
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(xy, xy[1:]):  # intermediate points, as a real hand produces
            for t in (0.25, 0.5, 0.75, 1.0):
                page.mouse.move(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        page.mouse.up()


def test_draw_digits_and_see_them_recognised(server_url, page):
    from playwright.sync_api import expect
    page.goto(server_url)
    expect(page.locator("#model option")).to_have_count(1)
    for digit in ("1", "7", "4"):
        page.click("#clear")
        expect(page.locator("#answer")).to_have_text("\u00a0")
        stroke_on(page, "#pad", DIGITS[digit])
        expect(page.locator("#answer")).to_have_text(digit, timeout=10_000)
        expect(page.locator("#predictions li")).to_have_count(5)
    seen = page.evaluate("Array.from(document.getElementById('seen').getContext('2d')"
                         ".getImageData(0, 0, 28, 28).data).filter((v, i) => i % 4 === 0 && v > 128).length")
    assert 20 < seen < 400  # the 28×28 the model saw is shown, with ink in it
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-predict.png"))

    page.click("#undo")  # a 4 has two strokes: undo leaves one, and the prediction follows
    expect(page.locator("#answer")).not_to_have_text("4", timeout=10_000)

    page.check("#word-mode")
    for i, digit in enumerate("174"):
        stroke_on(page, "#pad", DIGITS[digit], left=0.08 + 0.3 * i, top=0.15, size=0.7)
    expect(page.locator("#answer")).to_have_text("174", timeout=10_000)
    expect(page.locator("#characters li")).to_have_count(3)
    page.screenshot(path=str(ARTIFACTS / "web-read.png"))


def test_upload_and_blank_canvas_messages(server_url, page, tmp_path):
    from helpers import draw
    from playwright.sync_api import expect
    page.goto(server_url)
    draw(DIGITS["7"], size=120, canvas=(200, 180), at=(40, 30)).save(tmp_path / "seven.png")
    page.set_input_files("#upload", str(tmp_path / "seven.png"))
    expect(page.locator("#answer")).to_have_text("7", timeout=10_000)
    page.select_option("#charset", "digits")  # the charset selector: a digits model answers digits
    page.set_input_files("#upload", str(tmp_path / "seven.png"))
    expect(page.locator("#answer")).to_have_text("7", timeout=10_000)
    page.select_option("#charset", "upper")  # ... and says clearly that it has no uppercase letters
    page.set_input_files("#upload", str(tmp_path / "seven.png"))
    expect(page.locator("#status")).to_contain_text("none of its characters is a class of this model",
                                                    timeout=10_000)
    page.select_option("#charset", "")
    page.click("#clear")
    expect(page.locator("#status")).to_have_text("Draw a character.")
    (tmp_path / "notes.png").write_bytes(b"not an image")
    page.set_input_files("#upload", str(tmp_path / "notes.png"))
    expect(page.locator("#status")).to_contain_text("not a supported image", timeout=10_000)


@pytest.fixture
def reading_server_url():
    """The default recognisers: word mode reads with the shipped line model."""
    with serving(create_app(Recognizer.load())) as port:
        yield f"http://127.0.0.1:{port}"


def test_word_mode_reads_a_word_as_it_is_written(reading_server_url, page):
    from helpers import LETTERS
    from playwright.sync_api import expect
    page.goto(reading_server_url)
    page.check("#word-mode")
    bodies = []
    page.on("request", lambda r: bodies.append(r.post_data or "") if "/api/v1/read" in r.url else None)
    for i, letter in enumerate("HOTEL"):  # stroke by stroke, letter by letter, the answer following the pen
        stroke_on(page, "#pad", LETTERS[letter], left=0.06 + 0.17 * i, top=0.2, size=0.55)
    expect(page.locator("#answer")).to_have_text("HOTEL", timeout=10_000)
    expect(page.locator("#status")).to_contain_text("reads lines")
    expect(page.locator("#characters li")).to_have_count(5)
    # the pixels go out at once as a data: URL (canvas.toBlob would wait for the browser to go idle)
    assert bodies and all(b.startswith('{"image":"data:image/png;base64,') for b in bodies)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-read-word.png"))
    page.uncheck("#word-mode")  # one character: the character model, its top 5 and the 28×28 it saw
    stroke_on(page, "#pad", DIGITS["4"])
    expect(page.locator("#answer")).to_have_text("4", timeout=10_000)
    expect(page.locator("#status")).to_have_text("model emnist-cnn/bymerge47")
    page.screenshot(path=str(ARTIFACTS / "web-predict-default.png"))


def test_a_cleared_canvas_shows_no_late_answer(page):
    import time as clock

    from playwright.sync_api import expect

    done = []

    class Slow(Recognizer):  # every reading takes a while, so Clear comes while one is in flight
        def read_with(self, *args, **kwargs):
            clock.sleep(1.0)
            reading = super().read_with(*args, **kwargs)
            done.append(reading.text)
            return reading

    base = Recognizer.load()
    with serving(create_app(Slow(base.backend, base.name, base.lines))) as port:
        page.goto(f"http://127.0.0.1:{port}")
        page.check("#word-mode")
        stroke_on(page, "#pad", DIGITS["7"], left=0.1, top=0.2, size=0.55)
        expect(page.locator("#status")).to_have_text("recognising…", timeout=5_000)
        page.click("#clear")
        clock.sleep(2.0)  # the reply to the drawing has come back by now, and must not be shown
        assert len(done) == 1  # it was read (and answered): the page had a late answer to ignore
        expect(page.locator("#answer")).to_have_text("\u00a0")
        expect(page.locator("#characters li")).to_have_count(0)
        expect(page.locator("#status")).to_have_text("Write a word or a number.")
        stroke_on(page, "#pad", DIGITS["1"], left=0.1, top=0.2, size=0.55)  # and Undo likewise
        expect(page.locator("#status")).to_have_text("recognising…", timeout=5_000)
        page.click("#undo")
        clock.sleep(2.0)
        assert len(done) == 2
        expect(page.locator("#answer")).to_have_text("\u00a0")
