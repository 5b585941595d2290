"""Web app and REST API over Recognizer: `create_app(recognizer_or_backend)`, and `emnist-cnn serve`.

One process; each model is loaded once. Every error is JSON ({"detail": ...}) with a 4xx status: an upload over
the size limit (413), an unsupported type (415), an undecodable or blank image or malformed JSON (422), an
unknown model (404).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import gc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..data import preprocess
from ..errors import ConfigError
from ..recognition import Recognizer
from ..recognition.lines import DECODERS, LM_WEIGHT
from ..recognition.recognizer import READERS, character_form

WEB = Path(__file__).resolve().parent / "web"
MAX_UPLOAD_BYTES = 4 * 1024 * 1024
READ_BUDGET_SECONDS = 2.0   # segmentation time one /read may take on the model thread before it is refused (422)
HEADER_SECONDS = 10.0       # a request's headers must arrive within this, or the connection is closed
BODY_SECONDS = 30.0         # and its body within this (408): a slow client cannot hold a connection for long
MAX_CONNECTIONS = 256       # open connections beyond this are answered 503 at once
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
API = "/api/v1"

Row = Annotated[list[Annotated[float, Field(ge=0, le=255)]], Field(min_length=28, max_length=28)]


class ImageJSON(BaseModel):
    """Exactly one of: `image`, a base64 PNG/JPEG/BMP/WebP (a data: URL is fine), or `pixels`, 28 rows of 28
    values 0-255 already in EMNIST form (white ink on black, upright, centred)."""
    model_config = ConfigDict(extra="forbid")
    image: Optional[str] = Field(None, description="base64-encoded image file, or a data: URL")
    pixels: Optional[Annotated[list[Row], Field(min_length=28, max_length=28)]] = None


class Prediction(BaseModel):
    character: str
    probability: float


class PredictResponse(BaseModel):
    model: str
    predictions: list[Prediction]
    input: list[list[int]] = Field(description="the 28×28 image the model saw (0-255, white ink on black)")


class CharacterOut(BaseModel):
    character: str
    confidence: float
    box: list[int] = Field(description="x0, y0, x1, y1 in the image's pixels (x1, y1 exclusive)")
    predictions: list[Prediction]


class Alternative(BaseModel):
    text: str
    probability: float = Field(description="its share among the n best readings of the line")


class LineOut(BaseModel):
    text: str
    confidence: float
    box: list[int] = Field(description="x0, y0, x1, y1 in the image's pixels (x1, y1 exclusive)")
    alternatives: list[Alternative]


class ReadResponse(BaseModel):
    model: str
    reader: str = Field(description="lines (the line model) or components (one character per separate mark)")
    read_by: str = Field(description="the model that read the lines: the line model (lines10 where the charset is "
                                     "digits), or the character model for components")
    text: str = Field(description="the lines read, joined by newlines")
    characters: list[CharacterOut]
    lines: list[LineOut]


IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "PNG, JPEG, BMP or WebP"}}}},
    "application/json": {"schema": ImageJSON.model_json_schema()}}}}
ERRORS = {code: {"description": text} for code, text in (
    (404, "unknown model"), (413, "upload or image dimensions too large"),
    (415, "unsupported content or image type"), (422, "malformed request, undecodable or blank image"))}
STATUS = {preprocess.ImageTooLarge: 413, preprocess.UnsupportedImage: 415}


class BodyLimit:
    """ASGI middleware: refuse request bodies over max_bytes with 413 before the app reads them."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = JSONResponse({"detail": f"request body over the limit of {self.max_bytes:,} bytes"}, 413)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await too_large(scope, receive, send)
        chunks, size = [], 0
        deadline = asyncio.get_running_loop().time() + BODY_SECONDS
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                slow = JSONResponse({"detail": f"request body not received within {BODY_SECONDS:.0f} s"}, 408)
                return await slow(scope, receive, send)
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await too_large(scope, receive, send)
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay, send)


class Batcher:
    """The model work of one model in batches, on two threads: one prepares the uploads (decoding, preprocessing),
    the other runs the model. The uploads that arrive while a batch is being prepared form the next batch, so under
    load batches grow by themselves and a lone request runs at once (no waiting for a batch to fill); the next batch
    is prepared while the model classifies the last one (the forward pass does not hold Python's GIL).

    Two threads, not a thread per request: requests are served in arrival order, and the CPU goes to the work
    instead of to threads taking turns at the GIL (measured: about half the CPU per request of a thread per
    request). The event loop meanwhile only does HTTP.
    """

    def __init__(self, recognizer: Recognizer, max_batch: int = 64):
        self.recognizer, self.max_batch = recognizer, max_batch
        self.preparer = ThreadPoolExecutor(1, thread_name_prefix="emnist-cnn-prepare")
        self.model = ThreadPoolExecutor(1, thread_name_prefix="emnist-cnn-model")
        self.pending: list = []
        self.running = False
        self.tasks: set = set()  # held so that running tasks are not garbage-collected

    async def run(self, fn, *args):
        """fn(*args) on the model thread (for work that is not a single character, such as reading a word)."""
        return await asyncio.get_running_loop().run_in_executor(self.model, fn, *args)

    async def classify(self, image, top_k: int, allowed: np.ndarray | None = None
                       ) -> tuple[np.ndarray, list[tuple[str, float]]]:
        """An image file's bytes, or a uint8 28×28 already in EMNIST form -> (that form, top-k predictions among
        the allowed classes)."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((image, top_k, allowed, future))
        if not self.running:
            self.running = True
            self.start(self.drain())
        return await future

    def start(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
                images = [image for image, *_ in batch]
                forms = await asyncio.get_running_loop().run_in_executor(self.preparer, prepare, images)
                self.start(self.answer(batch, forms))  # the model classifies while the next batch is prepared
        finally:
            self.running = False

    async def answer(self, batch: list, outcomes: list) -> None:
        """Classify the prepared forms of a batch and answer each request: (form, top-k), or its own error."""
        ready = [i for i, outcome in enumerate(outcomes) if not isinstance(outcome, Exception)]
        if ready:
            try:
                probs = await self.run(self.recognizer.probabilities, np.stack([outcomes[i] for i in ready]))
                for i, p in zip(ready, probs):
                    outcomes[i] = (outcomes[i], self.recognizer.top(p, batch[i][1], batch[i][2]))
            except Exception as e:  # noqa: BLE001 - every request that reached the model gets the error
                for i in ready:
                    outcomes[i] = e
        for (*_, future), outcome in zip(batch, outcomes):
            if future.done():  # cancelled: its client went away
                continue
            if isinstance(outcome, Exception):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def prepare(images: list) -> list:
    """Each upload's 28×28 EMNIST form (a uint8 array passes through), or the exception its image raised."""
    outcomes = []
    for image in images:
        try:
            outcomes.append(image if isinstance(image, np.ndarray) else character_form(image, "upload"))
        except Exception as e:  # noqa: BLE001 - the error belongs to this request only
            outcomes.append(e)
    return outcomes


def as_recognizer(thing) -> Recognizer:
    return thing if isinstance(thing, Recognizer) else Recognizer(thing)


def create_app(recognizers, max_upload_bytes: int = MAX_UPLOAD_BYTES, allowed_hosts=None) -> FastAPI:
    """The app for one Recognizer (or backend), or several as a list / {name: ...}; the first is the default.
    allowed_hosts: the Host header values it answers (others get 400: a page of another origin that reaches the
    server by DNS rebinding is refused); None answers any, as a library app behind the caller's own checks."""
    if isinstance(recognizers, dict):
        models = {name: as_recognizer(r) for name, r in recognizers.items()}
    else:
        models = {r.name: r for r in map(as_recognizer, recognizers if isinstance(recognizers, list)
                                        else [recognizers])}
    default = next(iter(models))
    batchers = {name: Batcher(r) for name, r in models.items()}
    app = FastAPI(title="emnist-cnn", version="1", description="Handwritten character recognition (EMNIST CNNs)")
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(preprocess.ImageError)
    async def image_error(request, e: preprocess.ImageError):
        return JSONResponse({"detail": str(e)}, STATUS.get(type(e), 422))

    @app.exception_handler(Exception)
    async def unexpected(request, e: Exception):  # still JSON; the fuzz test checks this never happens
        return JSONResponse({"detail": f"internal error: {type(e).__name__}"}, 500)

    def pick(model: Optional[str]) -> tuple[str, Recognizer]:
        name = model or default
        if name not in models:
            raise HTTPException(404, f"unknown model {name!r}; available: {', '.join(models)}")
        return name, models[name]

    def invalid(e: ConfigError, value) -> RequestValidationError:
        """A bad query parameter as FastAPI reports its own: 422, the field in loc, the reason in msg."""
        return RequestValidationError([{"type": "value_error", "loc": ["query", e.field or "query"], "input": value,
                                        "msg": str(e)}])

    def check_top_k(r: Recognizer, top_k: int) -> int:
        try:
            return r.check_top_k(top_k)
        except ConfigError as e:
            raise invalid(e, top_k) from None

    def check_charset(r: Recognizer, charset: Optional[str]):
        if charset is None:
            return None
        try:
            return r.allowed(charset)
        except ConfigError as e:
            raise invalid(e, charset) from None

    async def image_from(request: Request) -> tuple[str, object]:
        """('image', bytes) or ('pixels', uint8 28×28) from a multipart upload or a JSON body."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=4)
            except Exception as e:  # noqa: BLE001 - any parser failure is a malformed upload
                raise HTTPException(422, f"malformed multipart body ({getattr(e, 'detail', e)})") from None
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise HTTPException(422, "multipart body needs a file field named 'file'")
            return "image", await upload.read()
        if kind == "application/json":
            try:
                body = ImageJSON.model_validate_json(await request.body())
            except ValidationError as e:
                # without the input: it may be bytes that are not UTF-8, which the error response cannot hold
                raise RequestValidationError(e.errors(include_url=False, include_context=False,
                                                      include_input=False)) from None
            if (body.image is None) == (body.pixels is None):
                raise HTTPException(422, "give exactly one of 'image' (base64) and 'pixels' (28×28)")
            if body.pixels is not None:
                return "pixels", np.clip(np.round(np.asarray(body.pixels, dtype=np.float32)), 0, 255).astype(np.uint8)
            data = body.image
            if data.startswith("data:"):  # data:[<type>][;base64],<data>
                header, comma, data = data.partition(",")
                if not comma:
                    raise HTTPException(422, "'image' is a data: URL without a comma before its data")
            try:
                return "image", base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPException(422, "'image' is not valid base64") from None
        raise HTTPException(415, f"unsupported content type {kind or '(none)'!r}; send multipart/form-data "
                                 "with a file field 'file', or application/json")

    def predictions(top) -> list[dict]:
        return [{"character": c, "probability": p} for c, p in top]

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": list(models)}

    @app.get(f"{API}/models")
    def list_models() -> dict:
        return {"default": default, "models": [
            {"name": name, "classes": "".join(r.classes), "architecture": r.backend.meta.get("architecture"),
             "test_accuracy": r.backend.meta.get("test_accuracy"), "dataset": r.backend.meta.get("dataset"),
             "line_model": r.lines.name if r.lines is not None else None,
             "charset_line_models": [c.name for c in r.charset_lines]}
            for name, r in models.items()]}

    @app.post(f"{API}/predict", response_model=PredictResponse, openapi_extra=IMAGE_BODY, responses=ERRORS)
    async def predict(request: Request, top_k: Annotated[int, Query()] = 5, model: Optional[str] = None,
                      charset: Annotated[Optional[str], Query(max_length=256)] = None):
        """The top-k characters for one image of a character (upload, base64 JSON, or a 28×28 array); `charset`
        (digits, upper, lower, letters, alnum, or the characters themselves) constrains the answer."""
        name, r = pick(model)
        check_top_k(r, top_k)
        allowed = check_charset(r, charset)
        kind, value = await image_from(request)
        if kind == "pixels" and value.max() < preprocess.MIN_CONTRAST:
            raise preprocess.BlankImage(f"pixels: no ink (brightest value {value.max()}, "
                                        f"at least {preprocess.MIN_CONTRAST} is needed)")

        form, top = await batchers[name].classify(value, top_k, allowed)
        return {"model": name, "predictions": predictions(top), "input": form.tolist()}

    @app.post(f"{API}/read", response_model=ReadResponse, openapi_extra=IMAGE_BODY, responses=ERRORS)
    async def read(request: Request, top_k: Annotated[int, Query()] = 5, model: Optional[str] = None,
                   charset: Annotated[Optional[str], Query(max_length=256)] = None,
                   reader: Annotated[str, Query(pattern=f"^({'|'.join(READERS)})$")] = "auto",
                   lexicon: Annotated[str, Query(pattern="^(english|none)$")] = "english",
                   lm_weight: Annotated[float, Query(ge=0, le=100)] = LM_WEIGHT,
                   pattern: Annotated[Optional[str], Query(max_length=200)] = None,
                   alternatives: Annotated[int, Query(ge=1, le=10)] = 3,
                   decoder: Annotated[str, Query(pattern=f"^({'|'.join(DECODERS)})$")] = "beam"):
        """The writing in an image (upload or base64 JSON): each line, top to bottom, with its characters, their
        boxes and the n best readings. `reader`: lines (the line model, the default where the server has one) or
        components (separate characters); `charset` constrains every character, `lexicon` and `lm_weight` set
        the context, `pattern` is a regular expression every line must match."""
        name, r = pick(model)
        args = dict(top_k=top_k, budget=READ_BUDGET_SECONDS, charset=charset, reader=reader, lexicon=lexicon,
                    lm_weight=lm_weight, pattern=pattern, alternatives=alternatives, decoder=decoder)
        try:
            options = r.read_options(**args)
        except ConfigError as e:
            raise invalid(e, args.get(e.field)) from None
        kind, value = await image_from(request)
        if kind == "pixels":
            raise HTTPException(422, "read needs an image ('image' or an upload), not a 28×28 'pixels' array")
        reading = await batchers[name].run(lambda: r.read_with(value, options))
        return {"model": name, "reader": reading.reader, "read_by": reading.read_by, "text": reading.text,
                "characters": [{"character": c.character, "confidence": c.confidence, "box": list(c.box),
                                "predictions": predictions(c.top)} for c in reading.characters],
                "lines": [{"text": line.text, "confidence": line.confidence, "box": list(line.box),
                           "alternatives": [{"text": t, "probability": q} for t, q in line.alternatives]}
                          for line in reading.lines]}

    return app


def served_hosts(host: str, extra=()) -> list[str]:
    """The Host names `serve` answers: the address it listens on, the loopback names, and any given."""
    hosts = [*LOCAL_HOSTS, *extra]
    if host not in ("0.0.0.0", "::", ""):
        hosts.insert(0, host)
    else:
        import socket
        hosts.append(socket.gethostname())
    return list(dict.fromkeys(hosts))


def bounded_http_protocol():
    """uvicorn's HTTP protocol with a deadline on each request's headers (uvicorn bounds only idle keep-alive)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        header_timer = None

        def start_header_timer(self) -> None:
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(HEADER_SECONDS, self.headers_too_slow)

        def stop_header_timer(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def headers_too_slow(self) -> None:
            self.header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.start_header_timer()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.start_header_timer()

        def on_headers_complete(self) -> None:
            self.stop_header_timer()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self.stop_header_timer()
            super().connection_lost(exc)

    return BoundedHttpToolsProtocol


def serve(models: list[str], host: str = "127.0.0.1", port: int = 8000, backend: str = "torch",
          device: str = "cpu", allowed_hosts=()) -> None:
    import torch
    import uvicorn
    torch.set_num_threads(1)  # the model thread, the preparing thread and the event loop share the cores
    app = create_app({name: Recognizer.load(name, backend, device) for name in models},
                     allowed_hosts=served_hosts(host, allowed_hosts))
    # torch, FastAPI and the models leave ~200,000 objects that live as long as the server; a full garbage collection
    # walks them all (tens of ms, a stall every request in flight waits out). Frozen, the collector skips them.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, http=bounded_http_protocol(),
                limit_concurrency=MAX_CONNECTIONS)
