"""Where and how tensors are computed: the device, the precision (fp32 or bf16 autocast), and a record of both
with the software versions for a run's config.json."""
from __future__ import annotations

import contextlib
import platform
import subprocess
from pathlib import Path

import torch

from .errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' = cuda, then mps, then cpu; an explicit device must exist here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not (torch.cuda.is_available()
                                      and (device.index or 0) < torch.cuda.device_count()):
        raise ConfigError(f"device {name!r}: no such CUDA device here "
                          f"({torch.cuda.device_count()} available); use --device cpu or auto")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r}: MPS is not available here; use --device cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    return device


def has_fast_bf16(device: torch.device) -> bool:
    """bf16 pays off on CUDA with bf16 support and on CPUs with AVX512-BF16/AMX (oneDNN reports it)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if has_fast_bf16(device) else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def git_revision() -> str:
    """HEAD of the repository this package runs from (with -dirty for local changes), else 'unknown'."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (rev + ("-dirty" if dirty else "")) if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: torch.device, precision: str) -> dict:
    """What a run records about where it ran (config.json's _environment, shown in the report)."""
    return {"git_revision": git_revision(), "torch": torch.__version__, "python": platform.python_version(),
            "device": str(device), "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                                                   else cpu_name()),
            "threads": torch.get_num_threads(), "precision": precision}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
