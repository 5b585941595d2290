"""Fetch NIST's official EMNIST archive: resumable download, then extract and verify each file atomically."""
from __future__ import annotations

import os
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..errors import DataError
from ..files import sha256_file
from .files import OFFICIAL_SHA256

NIST_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"


def download(url: str, dest: Path, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download url to dest, resuming a previous partial download (dest.part) with an HTTP Range request."""
    from tqdm import tqdm
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # already complete
            os.replace(part, dest)
            return dest
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise DataError(f"download of {url} failed: {getattr(e, 'reason', e)} (offline?)") from None
    with response:
        if response.status != 206:  # the server ignored the range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                           desc=dest.name, disable=not progress) as bar:
            try:
                while chunk := response.read(1 << 16):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, urllib.error.URLError) as e:
                raise DataError(f"download of {url} interrupted after {f.tell()} bytes ({e}); "
                                f"run again to resume from {part}") from None
    if total is not None and part.stat().st_size != total:
        raise DataError(f"download of {url} incomplete: {part.stat().st_size} of {total} bytes; "
                        f"run again to resume from {part}")
    os.replace(part, dest)
    return dest


def extract_verified(archive: Path, dest_dir: Path, checksums: dict[str, str]) -> list[Path]:
    """Extract every archive member named in checksums into dest_dir; each one lands only once verified."""
    out = []
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        archive.unlink()  # a corrupt archive is useless for resuming too
        raise DataError(f"{archive}: not a valid zip archive ({e}); deleted, run again to download afresh") from None
    with zf:
        members = {Path(m).name: m for m in zf.namelist()}
        missing = sorted(set(checksums) - set(members))
        if missing:
            raise DataError(f"{archive}: missing member(s) {', '.join(missing)}")
        for name, want in checksums.items():
            target = dest_dir / name
            if target.exists() and sha256_file(target) == want:
                out.append(target)
                continue
            tmp = target.with_name(name + f".tmp{os.getpid()}")
            try:
                with zf.open(members[name]) as src, open(tmp, "wb") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                tmp.unlink(missing_ok=True)
                raise DataError(f"{archive}: member {name} is corrupt ({e})") from None
            if (got := sha256_file(tmp)) != want:
                tmp.unlink()
                raise DataError(f"{archive}: member {name} has sha256 {got}, expected {want}")
            os.replace(tmp, target)
            out.append(target)
    return out


def fetch_official(dest_dir: Path, url: str | None = None, checksums: dict[str, str] | None = None) -> list[Path]:
    """Download NIST's gzip.zip (or $EMNIST_CNN_URL) into dest_dir and extract the verified EMNIST files."""
    url = url or os.environ.get("EMNIST_CNN_URL") or NIST_URL
    checksums = checksums if checksums is not None else OFFICIAL_SHA256
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir / "gzip.zip"
    if not archive.exists():
        download(url, archive)
    files = extract_verified(archive, dest_dir, checksums)
    archive.unlink()
    return files
