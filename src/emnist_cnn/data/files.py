"""EMNIST's files on disk: where they are looked up, their pinned checksums, IDX parsing, and the array cache.

Files are looked up, in order, in --data-dir, $EMNIST_DATA_DIR (both ":"-separated like PATH) and the user cache.
Every file whose sha256 is known (pinned official values, or a SHA256SUMS file beside it) is verified before it is
parsed; the parsed arrays are then cached as .npy and memory-mapped.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_write, sha256_file, write_text

OFFICIAL_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")

# sha256 of every official file of NIST's release (gzip.zip -> gzip/), from ../shared/data/emnist/SOURCE.md.
OFFICIAL_SHA256 = {
    "emnist-balanced-test-images-idx3-ubyte.gz": "117fc12b015e37ea98bfb2cbba3f77c3782c056cdbd219b87abfc8661d7135db",
    "emnist-balanced-test-labels-idx1-ubyte.gz": "a67cac948379b67270b9a4d0a01c8ec661598accf2f2b1964340b7c83cb175cd",
    "emnist-balanced-train-images-idx3-ubyte.gz": "74295e75e4e9fa2c102147460ee7eb763653d5132d883a84fb88932bfb8d2db4",
    "emnist-balanced-train-labels-idx1-ubyte.gz": "b46d41e5156a0a8aaaa4d18979fdd1588850fa8571018acffd5d93b325a7d6ed",
    "emnist-byclass-test-images-idx3-ubyte.gz": "5ec835bd5d5b1a66378a132e727fef20fe994b3cc666899befcca5ac766f50cd",
    "emnist-byclass-test-labels-idx1-ubyte.gz": "501e305eeeacb093b162592d80e8a2632040872360fa6d85cfcb2200d91ca92a",
    "emnist-byclass-train-images-idx3-ubyte.gz": "9e21987f03a6eb8b870187e785883ddad96947299587908f1a7ec2ca0f4be5f0",
    "emnist-byclass-train-labels-idx1-ubyte.gz": "f7ef403d48dc18a89dae0d83d11ee69cecb6e1c12c3a961d03712e495c02a8fa",
    "emnist-bymerge-test-images-idx3-ubyte.gz": "5e5815ec1b522089134435f7c55e75a00960b58414793593ffff23efc0821683",
    "emnist-bymerge-test-labels-idx1-ubyte.gz": "8bda1516255683ba9071e141947ca0c91a911176065cdd6259b0b4d8dc5b5f35",
    "emnist-bymerge-train-images-idx3-ubyte.gz": "39bf8c68037dad40db35348895f7e4e056e8c0a005ab78869c9fbc2c96e947be",
    "emnist-bymerge-train-labels-idx1-ubyte.gz": "2c47293b9e62d6abf6ad05fbf67e40baa32adfd380b8d7b44dcc35534b64e1f1",
    "emnist-digits-test-images-idx3-ubyte.gz": "20ebe43509264f7639d37c835a3f0b009e90b29e00a099a03101abe1644a3f63",
    "emnist-digits-test-labels-idx1-ubyte.gz": "bad1834c45d5988e270b99d43b13edc3fd898f658ffbc2caf2846ef27f7b05b0",
    "emnist-digits-train-images-idx3-ubyte.gz": "f7c95004d14d81af89522e67d8f0c781dfb3bd544181c81bfe1eb6b41c35b726",
    "emnist-digits-train-labels-idx1-ubyte.gz": "6638a6ff5fe2eefd9cca2471995b46c82986b8e4b2a70d2f5ce8e05d7edb319e",
    "emnist-letters-test-images-idx3-ubyte.gz": "50f0e93d75b99b463e9760b8345866f22587fa2c2fba472730a5ba09c693412d",
    "emnist-letters-test-labels-idx1-ubyte.gz": "924955c31fe7fd809b7303b5c0141282955f4b8390c74cdfd5d80435e0f4b4cb",
    "emnist-letters-train-images-idx3-ubyte.gz": "6288f418a917e007bf5fddb823a2dc7a5c6a35031401b93292a539cb12bd881f",
    "emnist-letters-train-labels-idx1-ubyte.gz": "9759af91ea6bccdf07a6040fd085861f2ec88e37f7c3f5760f6feb57106fbe5c",
    "emnist-mnist-test-images-idx3-ubyte.gz": "b25640fa9e356c618132f5df347c95ef5bae6d9c2596be1de40f7e0ae1c3eac6",
    "emnist-mnist-test-labels-idx1-ubyte.gz": "bcc5385d38f083dba046f5f756e99b32f5ea7fad122c6243c71c2239873065ca",
    "emnist-mnist-train-images-idx3-ubyte.gz": "5f9942f441031c0f1f2e4d162059fd6e19ea808b34c328b6d16cab0ed24c78f2",
    "emnist-mnist-train-labels-idx1-ubyte.gz": "00c6d3c2342fdffb1711e0b5656cac4ce5862d2826399d383a9bac07d612e9f8",
    "emnist-balanced-mapping.txt": "956dc507bf69e9f31f4e3e876d22ec66124aa229b5d0bd65ab8956a8044d3ede",
    "emnist-byclass-mapping.txt": "68fa9091ed325830418b5a8d732f32316e54a480b9f8994a161abb4eddd0d078",
    "emnist-bymerge-mapping.txt": "956dc507bf69e9f31f4e3e876d22ec66124aa229b5d0bd65ab8956a8044d3ede",
    "emnist-digits-mapping.txt": "6d157dc46a7b1c80d630f4fed571d9964db37ee1669cac403b6db2c8bb109d94",
    "emnist-letters-mapping.txt": "a56cb9a31c08e3251a61ea7b1ec8bc4f4cabdc1edf3128508d3a485ad53fa456",
    "emnist-mnist-mapping.txt": "6d157dc46a7b1c80d630f4fed571d9964db37ee1669cac403b6db2c8bb109d94",
}

# ----------------------------------------------------------------------------------------------- locations
def cache_dir() -> Path:
    return Path(os.environ.get("EMNIST_CNN_CACHE") or Path.home() / ".cache" / "emnist-cnn")


def search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """--data-dir, then $EMNIST_DATA_DIR, then the cache: each may hold several ':'-separated directories."""
    dirs: list[Path] = []
    for spec in (str(data_dir or ""), os.environ.get("EMNIST_DATA_DIR", "")):
        dirs += [Path(p).expanduser() for p in spec.split(os.pathsep) if p]
    dirs.append(cache_dir())
    return dirs


def file_names(split: str) -> dict[str, str]:
    stem = f"emnist-{split}"
    return {
        "train_images": f"{stem}-train-images-idx3-ubyte.gz", "train_labels": f"{stem}-train-labels-idx1-ubyte.gz",
        "test_images": f"{stem}-test-images-idx3-ubyte.gz", "test_labels": f"{stem}-test-labels-idx1-ubyte.gz",
        "mapping": f"{stem}-mapping.txt",
    }


def find_file(name: str, dirs: list[Path]) -> Path | None:
    """First of dirs holding `name`, gzipped or not (the '.gz' is optional on disk)."""
    plain = name[:-3] if name.endswith(".gz") else name
    for d in dirs:
        for candidate in (d / name, d / plain):
            if candidate.is_file():
                return candidate
    return None


def available_splits(dirs: list[Path]) -> list[str]:
    """Splits whose five files are all present somewhere in dirs."""
    pattern = re.compile(r"^emnist-(.+)-mapping\.txt$")
    names = sorted({m.group(1) for d in dirs if d.is_dir() for p in d.iterdir() if (m := pattern.match(p.name))})
    return [s for s in names if all(find_file(n, dirs) for n in file_names(s).values())]


def split_files(split: str, dirs: list[Path], parts=("train", "test")) -> dict[str, Path]:
    """The files of a split's parts (and its mapping), or a DataError saying what is missing where."""
    found = {k: find_file(n, dirs) for k, n in file_names(split).items() if k == "mapping" or k[:-7] in parts}
    missing = [file_names(split)[k] for k, p in found.items() if p is None]
    if missing:
        avail = available_splits(dirs)
        raise DataError(
            f"split {split!r}: missing {', '.join(missing)}; searched {', '.join(str(d) for d in dirs)}. "
            f"Splits available there: {', '.join(avail) if avail else 'none'}. "
            "Set --data-dir or EMNIST_DATA_DIR, or run `emnist-cnn data fetch` with network access.")
    return found  # type: ignore[return-value]


def part_files(split: str, dirs: list[Path]) -> dict[str, dict[str, Path | None]]:
    """Each file of a split, by part (mapping, train, test): its path, or None where it is missing."""
    names = file_names(split)
    return {"mapping": {"mapping": find_file(names["mapping"], dirs)},
            **{part: {kind: find_file(names[f"{part}_{kind}"], dirs) for kind in ("images", "labels")}
               for part in ("train", "test")}}


# ----------------------------------------------------------------------------------------------- checksums
def expected_sha256(path: Path) -> str | None:
    """Pinned official value, else the entry in a SHA256SUMS file beside it, else None (unverifiable)."""
    sums = path.parent / "SHA256SUMS"
    if sums.is_file():
        for line in sums.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") == path.name:
                return parts[0].lower()
    return OFFICIAL_SHA256.get(path.name)


def verify(path: Path) -> None:
    want = expected_sha256(path)
    if want is not None and (got := sha256_file(path)) != want:
        raise DataError(f"{path}: sha256 mismatch: expected {want}, found {got} (corrupt or altered file)")


# ----------------------------------------------------------------------------------------------- IDX and cache
def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (gzipped or not) into a uint8 array, checking magic, dims and length."""
    try:
        raw = gzip.open(path, "rb").read() if _is_gzip(path) else path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{path}: cannot decompress ({e}); the file is truncated or corrupt") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise DataError(f"{path}: IDX element type 0x{dtype_code:02x}, expected 0x08 (unsigned byte)")
    if ndim not in (1, 3):
        raise DataError(f"{path}: IDX with {ndim} dimensions, expected 1 (labels) or 3 (images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: header truncated ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (28, 28):
        raise DataError(f"{path}: images of {dims[1]}x{dims[2]}, expected 28x28")
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says {dims} = {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_mapping(path: Path) -> dict[int, str]:
    """EMNIST mapping file: 'label ascii [ascii...]' per line -> {label: character} (first code wins)."""
    mapping: dict[int, str] = {}
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not an EMNIST mapping file (byte {e.start} is not ASCII; expected lines of "
                        f"'label ascii-code')") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            mapping[int(parts[0])] = chr(int(parts[1]))
        except (ValueError, IndexError):
            raise DataError(f"{path}:{n}: expected 'label ascii', found {line!r}") from None
    if not mapping:
        raise DataError(f"{path}: empty mapping file")
    return mapping


def load_array(path: Path, kind: str) -> np.ndarray:
    """Verified, parsed array of an IDX file, upright for images; cached as .npy and memory-mapped.

    The cache is trusted only if it is what was built from this very file: the record beside it names the source
    (path, size, modification time) and the array (shape and CRC-32 of its bytes), and all of it must match; on any
    mismatch or read error (a truncated or edited .npy, a changed header) it is rebuilt from the source."""
    stat = path.stat()
    stamp = {"source": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    cache = cache_dir() / "arrays"
    npy, meta = cache / f"{path.name}.npy", cache / f"{path.name}.json"
    try:
        record = json.loads(meta.read_text())
        if {k: record.get(k) for k in stamp} == stamp:
            arr = np.load(npy, mmap_mode="r")
            if (arr.dtype == np.uint8 and list(arr.shape) == record.get("shape")
                    and arr.ndim == (3 if kind == "images" else 1) and array_crc32(arr) == record.get("crc32")):
                return arr
    except (OSError, ValueError, EOFError, TypeError, AttributeError):
        pass  # no cache, or a stale / corrupt one: rebuild below
    verify(path)
    arr = read_idx(path)
    if (arr.ndim == 3) != (kind == "images"):
        raise DataError(f"{path}: {arr.ndim}-dimensional IDX, expected {'images' if kind == 'images' else 'labels'}")
    if kind == "images":
        arr = np.ascontiguousarray(arr.transpose(0, 2, 1))  # EMNIST stores images transposed
    try:
        cache.mkdir(parents=True, exist_ok=True)
        save_npy(npy, arr)
        write_text(meta, json.dumps({**stamp, "shape": list(arr.shape), "crc32": array_crc32(arr)}))
    except OSError:
        pass  # read-only cache: still fine, just slower next time
    return arr


def array_crc32(arr: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(arr)).cast("B"))


def save_npy(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    atomic_write(path, write)
