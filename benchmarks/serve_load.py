"""Load test: N concurrent clients POST drawings to a real `emnist-cnn serve` process on 127.0.0.1 for a fixed
time; requests/s, latency percentiles and errors. The clients run on the same machine as the server, so they are
plain asyncio sockets sending pre-built keep-alive HTTP/1.1 requests: an HTTP client library would spend more CPU
per request than the server does, on the same two cores, and the measurement would be of the client.

    python benchmarks/serve_load.py --model RUN_DIR --clients 16 --seconds 20
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


def multipart_request(port: int, png: bytes) -> bytes:
    """The bytes of one keep-alive POST /api/v1/predict with the PNG as the multipart field 'file', built once so
    that the clients spend almost no CPU: the 2 cores are shared with the server, and the measurement is of it."""
    boundary = "emnistcnnloadtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
    head = (f"POST /api/v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
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


async def load(port: int, clients: int, seconds: float, requests: list[bytes]) -> dict:
    """`clients` closed-loop clients, each on its own keep-alive connection, each sending its next request as soon
    as the previous answer is in (no think time)."""
    latencies, errors = [], []

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
            "max_ms": round(float(ms.max()), 1), "errors": len(errors), "error_kinds": sorted(set(map(str, errors)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="a first 1-client run warms up")
    p.add_argument("--seconds", type=float, default=20.0, help="per client count")
    args = p.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "emnist_cnn", "serve", "--model", args.model, "--port", str(port)],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    try:
        requests = [multipart_request(port, canvas_png(s)) for s in range(32)]
        wait_ready(f"http://127.0.0.1:{port}")
        rows = []
        for n in args.clients:
            before = cpu_seconds(server.pid) if rows else None  # the first run includes start-up: not counted
            rows.append(asyncio.run(load(port, n, args.seconds, requests)))
            if before is not None:
                rows[-1]["server_cpu_ms_per_request"] = round(
                    1000 * (cpu_seconds(server.pid) - before) / rows[-1]["requests"], 2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_avg = os.getloadavg()
    print(table(rows, ["clients", "requests", "requests_per_second", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors",
                      "server_cpu_ms_per_request"]))
    print(f"load average during the run: {load_avg[0]:.1f} on {os.cpu_count()} cores (other work shares the machine)")
    path = write_results("serve_load", {"model": args.model, "target": "0 errors, p99 <= 50 ms at 16 clients",
                                        "load_average_1min": load_avg[0], "results": rows}, per_machine=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
