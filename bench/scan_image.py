"""The Debian image that ``bench.scan`` scans, built as gzip-compressed OCI layers on disk.

Three layers, as ``docker build`` leaves a Python application on ``debian:bookworm``:

1. **base**: ``etc/os-release`` (Debian 12) and ``var/lib/dpkg/status`` (the 144 packages of
   ``bookworm-vulnset.dpkg-status``, both from ``/work/shared/data/vulnscan/debian``), one
   ``var/lib/dpkg/info/<package>.list`` per package naming the files it owns, and files under
   ``usr/bin``, ``usr/lib/x86_64-linux-gnu`` (random bytes: binaries and shared libraries do
   not compress much), ``usr/share/doc``, ``usr/share/locale`` and ``usr/share/perl5``
   (compressible text);
2. **apt**: what ``apt-get install python3`` adds: ``var/lib/dpkg/status`` again (apt rewrites
   it), the ``var/lib/apt/lists`` opaque whiteout (``rm -rf /var/lib/apt/lists/*``), the
   Python standard library as text and more shared objects;
3. **app**: ``usr/local/lib/python3.11/site-packages`` with :data:`PYTHON_PACKAGES` (a
   ``.dist-info/METADATA`` and ``RECORD`` each, Python sources, and an extension module for one
   in three), the application's code under ``app/`` and one large data file (random).

Sizes follow ``total_mib`` (350 by default): about 45 % of the bytes are random, the rest text
made of a fixed vocabulary, so gzip takes the layers to roughly half their size. The content
is deterministic for a given seed; the layers are ``tar`` files written by ``tarfile``
(``gzip`` level 6, docker's default).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATA = Path("/work/shared/data/vulnscan")
DPKG_STATUS = DATA / "debian" / "bookworm-vulnset.dpkg-status"
OS_RELEASE = DATA / "debian" / "bookworm.os-release"

# Old releases on purpose: most have advisories in the PyPA database.
PYTHON_PACKAGES = (
    ("requests", "2.19.1"),
    ("urllib3", "1.24.1"),
    ("Django", "3.2.4"),
    ("Jinja2", "2.10.1"),
    ("PyYAML", "5.3.1"),
    ("Flask", "1.0"),
    ("Werkzeug", "0.15.3"),
    ("cryptography", "3.3.1"),
    ("Pillow", "8.1.0"),
    ("numpy", "1.21.0"),
    ("lxml", "4.6.2"),
    ("SQLAlchemy", "1.3.0"),
    ("paramiko", "2.4.1"),
    ("certifi", "2022.9.24"),
    ("idna", "3.6"),
    ("setuptools", "65.5.0"),
    ("pip", "23.0"),
    ("wheel", "0.37.1"),
    ("aiohttp", "3.8.4"),
    ("gunicorn", "20.1.0"),
    ("six", "1.16.0"),
    ("attrs", "23.1.0"),
    ("click", "8.1.3"),
    ("packaging", "23.1"),
    ("MarkupSafe", "2.1.3"),
    ("charset-normalizer", "3.2.0"),
    ("python-dateutil", "2.8.2"),
    ("pytz", "2023.3"),
    ("typing_extensions", "4.7.1"),
    ("itsdangerous", "2.1.2"),
)

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"

_VOCABULARY = (
    "def return self import from class if else elif for while in not and or None True False "
    "try except finally with as yield lambda raise assert pass break continue global print "
    "package version depends description maintainer license copyright changelog debian "
    "urgency upload fix security update library shared object module function value error "
    "the of to and a in is it you that he was for on are with they be at one have this"
)


@dataclass(frozen=True)
class BuiltLayer:
    """One layer file: its path, sha256 digest, compressed size, and what it holds."""

    path: Path
    digest: str
    size: int
    files: int
    uncompressed: int


class _Content:
    """Deterministic file contents: random bytes, or text cut from a fixed corpus."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words = _VOCABULARY.split()
        lines = []
        for _ in range(40_000):
            words = self.rng.choices(words, k=self.rng.randint(3, 12))
            lines.append(" " * 4 * self.rng.randint(0, 3) + " ".join(words))
        self.corpus = ("\n".join(lines) + "\n").encode()

    def random(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def text(self, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            start = self.rng.randrange(len(self.corpus) - 4096)
            out += self.corpus[start : start + min(size - len(out), 64 << 10)]
        return bytes(out[:size])

    def size(self, low: int, high: int) -> int:
        """Log-uniform between low and high: many small files, a few large."""
        return int(low * (high / low) ** self.rng.random())


class _LayerWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw = path.open("wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
        self._tar = tarfile.open(  # noqa: SIM115  (closed by close())
            fileobj=self._gzip, mode="w", format=tarfile.PAX_FORMAT
        )
        self.files = 0
        self.uncompressed = 0

    def add(self, name: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = 1_700_000_000
        self._tar.addfile(info, io.BytesIO(data))
        self.files += 1
        self.uncompressed += len(data)

    def close(self) -> BuiltLayer:
        self._tar.close()
        self._gzip.close()
        self._raw.close()
        digest = hashlib.sha256()
        with self.path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        return BuiltLayer(
            self.path,
            "sha256:" + digest.hexdigest(),
            self.path.stat().st_size,
            self.files,
            self.uncompressed,
        )


def dpkg_packages(status: bytes) -> list[str]:
    return [
        line.split(b":", 1)[1].strip().decode()
        for line in status.splitlines()
        if line.startswith(b"Package:")
    ]


def _fill(
    layer: _LayerWriter,
    content: _Content,
    budget: int,
    names: Iterator[str],
    sizes: tuple[int, int],
    binary: bool,
    owned: list[str] | None = None,
) -> None:
    """Add files from ``names`` until ``budget`` bytes were written."""
    written = 0
    while written < budget:
        name = next(names)
        size = min(content.size(*sizes), budget - written)
        data = content.random(size) if binary else content.text(size)
        layer.add(name, data, 0o755 if name.startswith("usr/bin/") else 0o644)
        if owned is not None:
            owned.append(name)
        written += size


def build_image(directory: Path, total_mib: int = 350, seed: int = 1) -> list[BuiltLayer]:
    """Write the three layers into ``directory``; return them base first.

    Raises FileNotFoundError, naming the missing file, when the shared data is not there.
    """
    for path in (DPKG_STATUS, OS_RELEASE):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: bench.scan reads its dpkg status and os-release from "
                f"{DATA} (the shared vulnerability-scanning data set)"
            )
    status = DPKG_STATUS.read_bytes()
    packages = dpkg_packages(status)
    content = _Content(seed)
    total = total_mib << 20
    rng = content.rng

    owner: dict[str, str] = {}  # path -> the dpkg package that ships it

    def series(pattern: str) -> Iterator[str]:
        n = 0
        while True:
            package = packages[n % len(packages)]
            path = pattern.format(pkg=package, n=n, so=rng.randint(0, 9))
            owner[path] = package
            yield path
            n += 1

    layers = []
    # 1. base
    base = _LayerWriter(directory / "base.tar.gz")
    base.add("etc/os-release", OS_RELEASE.read_bytes())
    base.add("var/lib/dpkg/status", status)
    owned: list[str] = []
    _fill(
        base,
        content,
        total * 12 // 100,
        series("usr/bin/{pkg}-{n}"),
        (8 << 10, 2 << 20),
        True,
        owned,
    )
    _fill(
        base,
        content,
        total * 15 // 100,
        series("usr/lib/x86_64-linux-gnu/lib{pkg}-{n}.so.{so}"),
        (16 << 10, 4 << 20),
        True,
        owned,
    )
    _fill(
        base,
        content,
        total * 4 // 100,
        series("usr/share/doc/{pkg}/copyright-{n}"),
        (1 << 10, 64 << 10),
        False,
        owned,
    )
    _fill(
        base,
        content,
        total * 6 // 100,
        series("usr/share/perl5/{pkg}/Module{n}.pm"),
        (2 << 10, 256 << 10),
        False,
        owned,
    )
    _fill(
        base,
        content,
        total * 3 // 100,
        series("usr/share/locale/{pkg}/LC_MESSAGES/m{n}.mo"),
        (4 << 10, 128 << 10),
        False,
    )
    by_package: dict[str, list[str]] = {p: [] for p in packages}
    for name in owned:
        by_package[owner[name]].append(name)
    for p, files in by_package.items():
        base.add(f"var/lib/dpkg/info/{p}.list", "".join(f"/{f}\n" for f in files).encode())
    layers.append(base.close())

    # 2. apt-get install python3 && rm -rf /var/lib/apt/lists/*
    apt = _LayerWriter(directory / "apt.tar.gz")
    apt.add("var/lib/dpkg/status", status)
    apt.add("var/lib/apt/lists/.wh..wh..opq", b"")
    _fill(
        apt,
        content,
        total * 14 // 100,
        series("usr/lib/python3.11/{pkg}/mod_{n}.py"),
        (1 << 10, 256 << 10),
        False,
    )
    _fill(
        apt,
        content,
        total * 10 // 100,
        series("usr/lib/x86_64-linux-gnu/{pkg}/plugin{n}.so"),
        (32 << 10, 4 << 20),
        True,
    )
    _fill(
        apt,
        content,
        total * 6 // 100,
        series("usr/share/{pkg}/data-{n}.txt"),
        (4 << 10, 512 << 10),
        False,
    )
    layers.append(apt.close())

    # 3. COPY requirements.txt / pip install / COPY app
    app = _LayerWriter(directory / "app.tar.gz")
    site = "usr/local/lib/python3.11/site-packages"
    per_package = total * 20 // 100 // len(PYTHON_PACKAGES)
    for i, (name, version) in enumerate(PYTHON_PACKAGES):
        dist = f"{site}/{name.replace('-', '_')}-{version}.dist-info"
        module = name.lower().replace("-", "_")
        sources: list[str] = []
        _fill(
            app,
            content,
            per_package if i % 3 else per_package // 2,
            (f"{site}/{module}/part{n}.py" for n in range(100_000)),
            (1 << 10, 128 << 10),
            False,
            sources,
        )
        if i % 3 == 0:
            so = f"{site}/{module}/_speedups.cpython-311-x86_64-linux-gnu.so"
            app.add(so, content.random(per_package // 2))
            sources.append(so)
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n\n"
        app.add(f"{dist}/METADATA", metadata.encode())
        app.add(f"{dist}/RECORD", "".join(f"{s[len(site) + 1 :]},,\n" for s in sources).encode())
        app.add(f"{dist}/INSTALLER", b"pip\n")
    _fill(
        app,
        content,
        total * 6 // 100,
        (f"app/service/handlers_{n}.py" for n in range(100_000)),
        (1 << 10, 64 << 10),
        False,
    )
    app.add("app/data/model.bin", content.random(total * 4 // 100))
    layers.append(app.close())
    return layers
