"""Load test: N concurrent clients POST drawings to a real `emnist-cnn serve` process on 127.0.0.1 for a fixed
time; requests/s, latency percentiles and errors. The clients run on the same machine as the server.

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


async def wait_ready(client, url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (await client.get(url + "/healthz")).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the server did not come up")


async def load(url: str, clients: int, seconds: float, bodies: list[bytes]) -> dict:
    import httpx
    latencies, errors = [], []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await wait_ready(client, url)
        for body in bodies[:3]:  # warm-up
            await client.post(url + "/api/v1/predict", files={"file": ("d.png", body, "image/png")})

        async def worker(k: int):
            i = k
            while time.monotonic() < end:
                t = time.perf_counter()
                try:
                    r = await client.post(url + "/api/v1/predict",
                                          files={"file": ("d.png", bodies[i % len(bodies)], "image/png")})
                    if r.status_code != 200:
                        errors.append(r.status_code)
                except Exception as e:  # noqa: BLE001 - counted, reported
                    errors.append(type(e).__name__)
                latencies.append(time.perf_counter() - t)
                i += clients
        start = time.monotonic()
        end = start + seconds
        await asyncio.gather(*(worker(k) for k in range(clients)))
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
        bodies = [canvas_png(s) for s in range(32)]
        rows = []
        for n in args.clients:
            before = cpu_seconds(server.pid) if rows else None  # the first run includes start-up: not counted
            rows.append(asyncio.run(load(f"http://127.0.0.1:{port}", n, args.seconds, bodies)))
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
                                        "load_average_1min": load_avg[0], "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
