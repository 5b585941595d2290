"""Fixtures: small synthetic EMNIST splits written in EMNIST's own IDX layout (transposed, gzipped)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import make_split

REAL_DIRS = [Path(p) for p in os.environ.get("EMNIST_DATA_DIR", "").split(os.pathsep) if p]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Each test gets its own cache dir and no implicit real data dir (real-data tests set it themselves)."""
    monkeypatch.setenv("EMNIST_CNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("EMNIST_CNN_URL", "http://127.0.0.1:9/nothing-here.zip")  # never the real network


@pytest.fixture
def synth_dir(tmp_path) -> Path:
    return make_split(tmp_path / "data")


@pytest.fixture
def real_data_dir(monkeypatch) -> str:
    """The real EMNIST directories; missing data fails under CI (never a silent skip), skips elsewhere."""
    spec = os.pathsep.join(str(d) for d in REAL_DIRS)
    if not REAL_DIRS or not all(d.is_dir() for d in REAL_DIRS):
        msg = f"EMNIST_DATA_DIR={spec!r} does not name existing directories"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    monkeypatch.setenv("EMNIST_DATA_DIR", spec)
    return spec
