"""Load test: N concurrent clients POST drawings to a real `emnist-cnn serve` process on 127.0.0.1 for a fixed
time; requests/s, latency percentiles and errors. The clients run on the same machine as the server, so they are
plain asyncio sockets sending pre-built keep-alive HTTP/1.1 requests: an HTTP client library would spend more CPU
per request than the server does, on the same two cores, and the measurement would be of the client.

    python benchmarks/serve_load.py --model RUN_DIR --clients 16 --seconds 20
    python benchmarks/serve_load.py --model RUN_DIR --clients 1 16 --adversaries 4   # plus a hostile mix

With --adversaries K, the last client count runs again with K more clients that send worst-case requests in turn
(a 60×60 grid of dots and a noise image to /read, a data: URL without a comma, a body that never finishes); the
well-behaved clients' latencies are reported beside the hostile ones' status codes, and no answer may be a 5xx.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_results  # noqa: E402


def canvas_png(seed: int) -> bytes:
    """A 280×280 drawing like the web page sends: a 7 with a little jitter."""
    rng = np.random.default_rng(seed)
    img = Image.new("L", (280, 280), 255)
    pts = [(60, 60), (220, 60), (120, 240)]
    ImageDraw.Draw(img).line([(x + rng.integers(-15, 15), y + rng.integers(-15, 15)) for x, y in pts],
                             fill=0, width=18, joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def hostile_requests(port: int) -> list[bytes]:
    """Worst cases of each kind the server must answer quickly with a 4xx (issue 16)."""
    grid = np.full((500, 500), 255, np.uint8)
    for y in range(8, 488, 8):
        for x in range(8, 488, 8):
            grid[y:y + 3, x:x + 3] = 0
    noise = (np.random.default_rng(0).random((300, 400)) < 0.3).astype(np.uint8) * 255
    data_url = b'{"image": "data:x"}'
    head = (f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data_url)}\r\n\r\n").encode()
    return [multipart_request(port, png_bytes(Image.fromarray(grid)), "/api/v1/read"),
            multipart_request(port, png_bytes(Image.fromarray(noise)), "/api/v1/read"), head + data_url]


async def slow_body(port: int, end: float, statuses: list) -> None:
    """A client that sends headers and a little of a body, then nothing: it must not hold anything for long."""
    while time.monotonic() < end:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
                     f"\r\nContent-Length: 100000\r\n\r\n{{\"pix".encode())
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.1, end - time.monotonic()))
            statuses.append(int(head.split(b" ", 2)[1]))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 120.0) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:  # not listening yet
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not come up")


def multipart_request(port: int, png: bytes, path: str = "/api/v1/predict") -> bytes:
    """The bytes of one keep-alive POST /api/v1/predict with the PNG as the multipart field 'file', built once so
    that the clients spend almost no CPU: the 2 cores are shared with the server, and the measurement is of it."""
    boundary = "emnistcnnloadtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def exchange(reader, writer, request: bytes) -> int:
    """Send one request on a kept-alive connection, read the whole response; its status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    if length is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(length)
    return status


async def load(port: int, clients: int, seconds: float, requests: list[bytes], hostile: list[bytes] | None = None,
               adversaries: int = 0) -> dict:
    """`clients` closed-loop clients, each on its own keep-alive connection, each sending its next request as soon
    as the previous answer is in (no think time); and `adversaries` more that send the hostile requests in turn
    (one of them a body that never finishes)."""
    latencies, errors, hostile_statuses = [], [], []

    async def adversary(k: int):
        await ready.wait()
        if k == 0:
            return await slow_body(port, end, hostile_statuses)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.monotonic() < end:
                try:
                    hostile_statuses.append(await exchange(reader, writer, hostile[i % len(hostile)]))
                except Exception as e:  # noqa: BLE001 - the server may close a hostile connection: reconnect
                    hostile_statuses.append(type(e).__name__)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                i += 1
        finally:
            writer.close()

    async def worker(k: int):
        i = k
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await exchange(reader, writer, requests[i % len(requests)])  # warm-up, not counted
            await ready.wait()
            while time.monotonic() < end:
                t = time.perf_counter()
                try:
                    status = await exchange(reader, writer, requests[i % len(requests)])
                    if status != 200:
                        errors.append(status)
                except Exception as e:  # noqa: BLE001 - counted, reported; the connection is renewed
                    errors.append(type(e).__name__)
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                latencies.append(time.perf_counter() - t)
                i += clients
        finally:
            writer.close()

    ready = asyncio.Event()
    end = float("inf")
    tasks = [asyncio.create_task(worker(k)) for k in range(clients)]
    tasks += [asyncio.create_task(adversary(k)) for k in range(adversaries)]
    await asyncio.sleep(0.5)  # every connection open and warmed up
    start = time.monotonic()
    end = start + seconds
    ready.set()
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    ms = np.array(latencies) * 1000
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies),
            "requests_per_second": round(len(latencies) / elapsed, 1), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p90_ms": round(float(np.percentile(ms, 90)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1), "errors": len(errors), "error_kinds": sorted(set(map(str, errors))),
            "adversaries": adversaries,
            "hostile_answers": {str(k): hostile_statuses.count(k) for k in sorted(set(hostile_statuses), key=str)},
            "server_errors": sum(1 for k in hostile_statuses + errors if isinstance(k, int) and k >= 500)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="a first 1-client run warms up")
    p.add_argument("--seconds", type=float, default=20.0, help="per client count")
    p.add_argument("--adversaries", type=int, default=0, help="hostile clients added to a last run")
    args = p.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "emnist_cnn", "serve", "--model", args.model, "--port", str(port)],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    try:
        requests = [multipart_request(port, canvas_png(s)) for s in range(32)]
        wait_ready(f"http://127.0.0.1:{port}")
        rows = []
        runs = [(n, 0) for n in args.clients] + ([(args.clients[-1], args.adversaries)] if args.adversaries else [])
        hostile = hostile_requests(port)
        for n, adversaries in runs:
            before = cpu_seconds(server.pid) if rows else None  # the first run includes start-up: not counted
            rows.append(asyncio.run(load(port, n, args.seconds, requests, hostile, adversaries)))
            if before is not None:
                rows[-1]["server_cpu_ms_per_request"] = round(
                    1000 * (cpu_seconds(server.pid) - before) / rows[-1]["requests"], 2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_avg = os.getloadavg()
    print(table(rows, ["clients", "adversaries", "requests", "requests_per_second", "p50_ms", "p90_ms", "p99_ms",
                       "max_ms", "errors", "server_errors", "hostile_answers", "server_cpu_ms_per_request"]))
    print(f"load average during the run: {load_avg[0]:.1f} on {os.cpu_count()} cores (other work shares the machine)")
    path = write_results("serve_load", {"model": args.model, "target": "0 errors, p99 <= 50 ms at 16 clients; "
                                        "with hostile clients: the others' p99 bounded, no 5xx",
                                        "load_average_1min": load_avg[0], "results": rows}, per_machine=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
