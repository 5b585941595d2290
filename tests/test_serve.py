"""REST API: every endpoint, and every kind of bad input answered with a JSON 4xx, never a 500."""
import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import SEVEN, draw, line_image, png, random_model_dir
from PIL import Image

from emnist_cnn.data import preprocess
from emnist_cnn.recognition import Recognizer
from emnist_cnn.serving.app import create_app

LIMIT = 200_000


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory):
    return Recognizer.load(random_model_dir(tmp_path_factory.mktemp("model")))


@pytest.fixture(scope="module")
def client(recognizer):
    other = Recognizer(recognizer.backend, name="second")
    return TestClient(create_app({"first": recognizer, "second": other}, max_upload_bytes=LIMIT))


def upload(client, data, path="/api/v1/predict", name="x.png", kind="image/png", **params):
    return client.post(path, files={"file": (name, data, kind)}, params=params)


def detail(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return str(response.json()["detail"])


def test_health_models_page_and_schema(client):
    assert client.get("/healthz").json() == {"status": "ok", "models": ["first", "second"]}
    models = client.get("/api/v1/models").json()
    assert models["default"] == "first" and [m["name"] for m in models["models"]] == ["first", "second"]
    assert models["models"][0]["classes"] == "abcdef" and models["models"][0]["architecture"] == "tiny-cnn"
    page = client.get("/")
    assert page.status_code == 200 and '<canvas id="pad"' in page.text and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # every asset is served locally
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/read", "/api/v1/models", "/healthz"} <= set(schema["paths"])
    body = schema["paths"]["/api/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}


def test_predict_upload_base64_and_pixels_agree(client, recognizer):
    image = png(draw(SEVEN))
    r = upload(client, image, top_k=3)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "first" and len(out["predictions"]) == 3
    expected = recognizer.predict(image, top_k=3)
    assert [(p["character"], pytest.approx(p["probability"])) for p in out["predictions"]] == expected
    assert np.array_equal(np.array(out["input"]), preprocess.to_emnist(image))
    b64 = base64.b64encode(image).decode()
    for value in (b64, "data:image/png;base64," + b64):
        again = client.post("/api/v1/predict", json={"image": value}, params={"top_k": 3}).json()
        assert again["predictions"] == out["predictions"]
    pixels = client.post("/api/v1/predict", json={"pixels": out["input"]}, params={"top_k": 3}).json()
    assert pixels["predictions"] == out["predictions"] and pixels["input"] == out["input"]
    second = upload(client, image, model="second").json()
    assert second["model"] == "second" and len(second["predictions"]) == 5


def test_read_returns_characters_left_to_right(client, recognizer):
    word = line_image([SEVEN, [[(0.5, 0), (0.5, 1)]], SEVEN])
    buf = io.BytesIO()
    word.save(buf, "PNG")
    r = upload(client, buf.getvalue(), path="/api/v1/read", top_k=2)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["text"] == recognizer.read(word).text and len(out["characters"]) == 3
    boxes = [c["box"] for c in out["characters"]]
    assert boxes == sorted(boxes) and all(len(c["predictions"]) == 2 for c in out["characters"])
    as_json = client.post("/api/v1/read", json={"image": base64.b64encode(buf.getvalue()).decode()})
    assert as_json.json()["text"] == out["text"]
    assert "not a 28×28 'pixels' array" in detail(
        client.post("/api/v1/read", json={"pixels": [[0] * 28] * 28}), 422)


def test_size_limits_give_413(client):
    big = b"\x89PNG" + b"\x00" * (LIMIT + 1)
    assert "over the limit" in detail(upload(client, big), 413)

    def chunks():  # no content-length: the limit is enforced while reading
        for _ in range(30):
            yield b"x" * 10_000
    r = client.post("/api/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert "over the limit" in detail(r, 413)
    bomb = png(Image.new("1", (6000, 5000)))
    assert "more than the limit" in detail(upload(client, bomb), 413)


def test_unsupported_types_give_415(client):
    assert "unsupported content type 'text/plain'" in detail(
        client.post("/api/v1/predict", content=b"hello", headers={"content-type": "text/plain"}), 415)
    assert "(none)" in detail(client.post("/api/v1/predict", content=b"hello"), 415)
    assert "not a supported image" in detail(upload(client, b"GIF89a not really", name="x.gif"), 415)
    buf = io.BytesIO()
    draw(SEVEN).save(buf, "TIFF")
    assert "expected PNG, JPEG, BMP, WEBP" in detail(upload(client, buf.getvalue()), 415)


@pytest.mark.parametrize("body, message", [
    ({}, "exactly one of"),
    ({"image": "aGVsbG8=", "pixels": [[0] * 28] * 28}, "exactly one of"),
    ({"image": "not base64!!"}, "not valid base64"),
    ({"pixels": [[0] * 28] * 27}, "at least 28"),
    ({"pixels": [[0] * 29] * 28}, "at most 28"),
    ({"pixels": [[300] * 28] * 28}, "less than or equal to 255"),
    ({"pixels": [["a"] * 28] * 28}, "valid number"),
    ({"pixels": [[0] * 28] * 28}, "no ink"),
    ({"pixels": 5}, "valid array"),
    ({"image": "aGk=", "extra": 1}, "Extra inputs"),
    ([1, 2], "should be an object"),
])
def test_malformed_json_gives_422(client, body, message):
    assert message in detail(client.post("/api/v1/predict", json=body), 422)


def test_bad_images_and_parameters_give_422_or_404(client):
    assert "cannot decode" in detail(upload(client, png(draw(SEVEN))[:300]), 422)
    assert "no ink found" in detail(upload(client, png(Image.new("RGB", (200, 100), "white"))), 422)
    assert "no ink found" in detail(upload(client, png(Image.new("RGBA", (64, 64), (0, 0, 0, 0)))), 422)
    assert "JSON" in detail(client.post("/api/v1/predict", content=b"{not json",
                                        headers={"content-type": "application/json"}), 422)
    assert "field named 'file'" in detail(client.post("/api/v1/predict", data={"other": "x"},
                                                      files={"upload": ("x.png", b"1")}), 422)
    assert "malformed multipart" in detail(client.post(
        "/api/v1/predict", content=b"--zz\r\nnonsense", headers={"content-type": "multipart/form-data"}), 422)
    assert "top_k: expected an integer from 1 to 6" in detail(upload(client, png(draw(SEVEN)), top_k=7), 422)
    assert "top_k: expected an integer from 1 to 6" in detail(upload(client, png(draw(SEVEN)), top_k=0), 422)
    assert detail(upload(client, png(draw(SEVEN)), top_k="many"), 422)
    assert "unknown model 'nope'; available: first, second" in detail(
        upload(client, png(draw(SEVEN)), model="nope"), 404)
    assert detail(client.get("/api/v1/nothing"), 404)
    assert detail(client.get("/api/v1/predict"), 405)


def test_app_from_a_backend(recognizer):
    c = TestClient(create_app(recognizer.backend))
    assert c.get("/healthz").json()["status"] == "ok"
    assert upload(c, png(draw(SEVEN))).json()["predictions"][0]["character"] in "abcdef"


def test_concurrent_requests_share_batches_and_get_their_own_answers(recognizer):
    import asyncio

    import httpx
    app = create_app(recognizer)
    images = [png(draw([[(0, 0), (1, i / 10)], [(0.5, 0), (0.2, 1)]])) for i in range(12)]
    calls = []
    real = recognizer.probabilities

    def counting(batch):
        calls.append(len(batch))
        return real(batch)

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await asyncio.gather(*(c.post("/api/v1/predict", params={"top_k": 2}, json={
                "pixels": preprocess.to_emnist(im).tolist()}) for im in images))
    recognizer.probabilities = counting
    try:
        replies = asyncio.run(run())
    finally:
        del recognizer.probabilities
    for im, reply in zip(images, replies):
        got = [(p["character"], p["probability"]) for p in reply.json()["predictions"]]
        want = recognizer.predict(im, top_k=2)
        assert [c for c, _ in got] == [c for c, _ in want]
        assert [p for _, p in got] == pytest.approx([p for _, p in want], rel=1e-4)
    assert sum(calls) == 12 and len(calls) < 12  # some requests shared a forward pass


def test_a_bad_image_in_a_shared_batch_fails_alone(recognizer):
    """Uploads are prepared on the model's worker in batches: each bad one gets its own error, the rest answers."""
    import asyncio

    import httpx
    app = create_app(recognizer)
    good = [png(draw([[(0, 0), (1, i / 10)]])) for i in range(6)]
    blank, garbage = png(Image.new("L", (50, 50), 255)), b"not an image at all"
    uploads = [good[0], blank, *good[1:4], garbage, *good[4:]]

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await asyncio.gather(*(c.post("/api/v1/predict", files={"file": ("x.png", data, "image/png")})
                                          for data in uploads))
    replies = asyncio.run(run())
    assert [r.status_code for r in replies] == [200, 422, 200, 200, 200, 415, 200, 200]
    assert "no ink" in replies[1].json()["detail"] and "not a supported image" in replies[5].json()["detail"]
    for data, reply in zip(good, [r for r in replies if r.status_code == 200]):
        assert reply.json()["predictions"][0]["character"] == recognizer.predict(data, top_k=1)[0][0]


def test_json_body_that_is_not_utf8_gives_422(client):  # found by the schemathesis fuzz test
    r = client.post("/api/v1/predict", content=b"\x80", headers={"content-type": "application/json"})
    assert "JSON" in detail(r, 422)


def test_the_serve_command_answers_over_http(tmp_path):
    """`emnist-cnn serve` as a user starts it: a real process on a free port, the model loaded once."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx
    model = random_model_dir(tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "emnist_cnn", "serve", "--model", str(model), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert health.json() == {"status": "ok", "models": [str(model)]}
        images = [png(draw(SEVEN)), png(Image.new("L", (40, 40), 255))]
        replies = [httpx.post(f"http://127.0.0.1:{port}/api/v1/predict", files={"file": ("x.png", im, "image/png")})
                   for im in images]
        assert replies[0].status_code == 200 and len(replies[0].json()["predictions"]) == 5
        assert replies[1].status_code == 422 and "no ink" in replies[1].json()["detail"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_request_cancelled_while_queued_does_not_stall_the_others(recognizer):
    """A client that goes away leaves a cancelled future in a batch; the rest of the batch is still answered."""
    import asyncio

    from emnist_cnn.serving.app import Batcher
    forms = [preprocess.to_emnist(png(draw([[(0, 0), (1, i / 10)]]))) for i in range(4)]

    async def run():
        batcher = Batcher(recognizer)
        tasks = [asyncio.ensure_future(batcher.classify(f, 2)) for f in forms]
        await asyncio.sleep(0)  # all four queued, the first round started
        tasks[2].cancel()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)
    results = asyncio.run(run())
    assert isinstance(results[2], asyncio.CancelledError)
    for form, (got_form, top) in zip([forms[i] for i in (0, 1, 3)], [results[i] for i in (0, 1, 3)]):
        assert np.array_equal(form, got_form) and top[0][0] == recognizer.classify(form[None], 1)[0][0][0]
