"""The download path against a local HTTP server on 127.0.0.1: success, interrupted-then-resumed, corrupted."""
import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import make_split

from emnist_cnn.data import load_split
from emnist_cnn.data.download import fetch_official
from emnist_cnn.errors import DataError


def synthetic_archive(tmp_path):
    """A zip laid out like NIST's gzip.zip (gzip/emnist-*), and the sha256 table of its members."""
    src = make_split(tmp_path / "src", name="synth")
    buf = io.BytesIO()
    checksums = {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(src.iterdir()):
            zf.write(f, f"gzip/{f.name}")
            checksums[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
    return buf.getvalue(), checksums


class Server:
    """Serves one payload with Range support; can cut the first response short to simulate a dropped link."""

    def __init__(self, payload: bytes, cut_first_after: int | None = None):
        self.payload, self.cut, self.requests = payload, cut_first_after, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = outer.payload[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.end_headers()
                if outer.cut is not None and len(outer.requests) == 1:
                    self.wfile.write(body[:outer.cut])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-transfer
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/gzip.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(payload, **kw):
        servers.append(Server(payload, **kw))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def test_download_success(tmp_path, serve):
    payload, sums = synthetic_archive(tmp_path)
    server = serve(payload)
    dest = tmp_path / "cache"
    files = fetch_official(dest, url=server.url, checksums=sums)
    assert sorted(f.name for f in files) == sorted(sums)
    assert not (dest / "gzip.zip").exists() and not list(dest.glob("*.part"))
    assert load_split("synth", str(dest), download=False).classes == list("abcdef")


def test_download_interrupted_then_resumed(tmp_path, serve):
    payload, sums = synthetic_archive(tmp_path)
    server = serve(payload, cut_first_after=len(payload) // 3)
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="(interrupted|incomplete).*run again to resume"):
        fetch_official(dest, url=server.url, checksums=sums)
    part = dest / "gzip.zip.part"
    assert part.stat().st_size == len(payload) // 3
    assert not any(dest.glob("emnist-*"))  # nothing half-written beside the partial download
    fetch_official(dest, url=server.url, checksums=sums)
    assert server.requests[-1] == f"bytes={len(payload) // 3}-"  # the second request resumed
    assert load_split("synth", str(dest), download=False).train_images.shape == (240, 28, 28)


def test_download_corrupted_member_is_rejected(tmp_path, serve):
    payload, sums = synthetic_archive(tmp_path)
    bad = dict(sums, **{"emnist-synth-train-images-idx3-ubyte.gz": "0" * 64})
    server = serve(payload)
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="emnist-synth-train-images-idx3-ubyte.gz has sha256 .* expected 0000"):
        fetch_official(dest, url=server.url, checksums=bad)
    assert not (dest / "emnist-synth-train-images-idx3-ubyte.gz").exists()
    assert not list(dest.glob("*.tmp*"))


def test_download_corrupted_archive_is_rejected(tmp_path, serve):
    payload, sums = synthetic_archive(tmp_path)
    server = serve(b"PK" + bytes(len(payload)))
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="not a valid zip archive"):
        fetch_official(dest, url=server.url, checksums=sums)
    assert not (dest / "gzip.zip").exists()


def test_offline_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="download of http://127.0.0.1:9/.* failed"):
        fetch_official(tmp_path / "cache")
