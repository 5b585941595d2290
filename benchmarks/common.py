"""Shared bits of the benchmark scripts: machine description, a printed table, JSON results."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from emnist_cnn.files import write_json
from emnist_cnn.runtime import cpu_name, git_revision

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = "../shared/data/emnist:../shared/data/emnist-local"


def setup_data_dir() -> str:
    os.environ.setdefault("EMNIST_DATA_DIR", DEFAULT_DATA)
    return os.environ["EMNIST_DATA_DIR"]


def cpu_flags() -> list[str]:
    """The flags that decide CPU speed here: fp32 vector width and native bf16 (AVX512-BF16, AMX)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in have]
    except OSError:
        pass
    return []


def cpu_kind() -> str:
    """A short name for results files: vendor plus the widest feature, e.g. amd-avx2, amd-avx512bf16, intel-amx.
    The model name alone does not tell machines apart (a VM may call Zen 3 and Zen 5 both 'AMD EPYC')."""
    name, flags = cpu_name().lower(), cpu_flags()
    vendor = "amd" if "amd" in name else "intel" if "intel" in name else platform.machine()
    feature = ("amx" if "amx_bf16" in flags else "avx512bf16" if "avx512_bf16" in flags
               else "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "generic")
    return f"{vendor}-{feature}"


def machine() -> dict:
    info = {"cpu": cpu_name(), "cpu_kind": cpu_kind(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "git_revision": git_revision(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def train_cli(args: list[str], out_dir: str | Path) -> tuple[Path, float]:
    """`emnist-cnn train ARGS` as a user runs it (a fresh process, quiet, no report) into out_dir: the run
    directory it printed, and the wall-clock seconds of the whole process."""
    cmd = [sys.executable, "-m", "emnist_cnn", "train", *args, "--out-dir", str(out_dir), "--quiet", "--no-report"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"emnist-cnn train {' '.join(args)} failed:\n{proc.stderr}")
    return Path(proc.stdout.strip().splitlines()[-1].split(": ", 1)[1]), wall  # "run directory: DIR"


def times_ms(run, n: int, warmup: int = 1) -> list[float]:
    """Milliseconds of each of n calls run(i), i = 0..n-1, after `warmup` calls not counted."""
    for i in range(warmup):
        run(i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        run(i)
        out.append((time.perf_counter() - start) * 1000)
    return out


def percentiles(ms: list[float]) -> dict:
    """The median and the 99th percentile of latencies in ms."""
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def mean_std(values) -> dict:
    values = list(values)
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def table(rows: list[dict], columns: list[str], markdown: bool = False) -> str:
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    if markdown:  # as the README's tables are written
        rows = ["| " + " | ".join(row) + " |" for row in [columns, *cells]]
        return "\n".join([rows[0], "|" + "---|" * len(columns), *rows[1:]])
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def save_figure(fig, name: str, dpi: int = 100) -> Path:
    """docs/NAME.png: a figure the README shows."""
    fig.tight_layout()
    out = Path(__file__).resolve().parents[1] / "docs" / f"{name}.png"
    fig.savefig(out, dpi=dpi)
    print(f"wrote {out}")
    return out


def write_results(name: str, payload: dict, per_machine: bool = False) -> Path:
    """RESULTS/NAME.json; a timing (per_machine) goes to NAME-CPUKIND.json, one file per kind of CPU measured."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}-{cpu_kind()}.json" if per_machine else f"{name}.json")
    payload = {"benchmark": name, "command": " ".join([Path(sys.executable).name] + sys.argv),
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(), **payload}
    write_json(path, payload)
    return path
