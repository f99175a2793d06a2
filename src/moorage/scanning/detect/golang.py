"""Go binaries: the modules compiled into them, from the build information the Go linker
embeds (what ``go version -m`` prints).

The format (Go 1.18 and later, ``debug/buildinfo``): a 32-byte header starting with the 14-byte
magic ``\\xff Go buildinf:``, then the pointer size and a flags byte. Flag ``0x2`` says the
strings follow inline: two strings, each a uvarint length then the bytes: the Go version
(``go1.22.1``) and the module information, wrapped in two 16-byte sentinels, made of lines
``path <main package>``, ``mod <path> <version> <sum>``, ``dep <path> <version> <sum>``,
``=> <path> <version> <sum>`` (replaces the line before it) and ``build <key>=<value>``.

Reported: the main module (unless its version is ``(devel)``, what a local ``go build`` says:
nothing to match), each dependency (a replacement's path and version when it is replaced; a
dependency replaced by a local directory, which has no version, is dropped: its code is not
the upstream module's), and the toolchain as ``pkg:golang/stdlib@1.22.1``, the name Trivy and
Grype use, so advisories against the standard library match.

Not read: binaries built before Go 1.18 (their header points into the data segment, which
would need the ELF/Mach-O/PE section table); a ``\\xff Go buildinf:`` seen in a file whose
header does not parse is passed over.

Which files: regular files with an executable bit, of at most :data:`MAX_BINARY` bytes
(bigger ones are reported as issues). The layer reader keeps contents by path alone, before
the mode is known, so :func:`wants` guesses from the path: a name without an extension
(``.so`` libraries and scripts with one are not Go programs) in a directory programs live in
(any ``bin`` or ``sbin`` directory, ``app``, ``ko-app``, ``usr/local/go/pkg/tool/*``, ``opt``)
or at the root (``/manager``, ``/server``, common for ``FROM scratch`` images). A Go
program elsewhere (``usr/lib/foo/helper``) is missed; every binary in those directories is
kept in memory up to the size limit, Go or not.
"""

from __future__ import annotations

import re

from packageurl import PackageURL

from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_INLINE = 0x2
MAX_BINARY = 64 * 1024 * 1024
#: Module information longer than this is not a real binary's.
MAX_STRING = 16 * 1024 * 1024

_PROGRAM_DIR = re.compile(
    r"^(?:[^/]+"  # at the root
    r"|(?:.*/)?s?bin/[^/]+"  # bin, sbin, usr/bin, usr/local/bin, usr/local/go/bin, go/bin
    r"|(?:app|ko-app|opt)/.+"
    r"|usr/local/go/pkg/tool/[^/]+/[^/]+"
    r")$"
)


def wants(path: str) -> bool:
    basename = path.rsplit("/", 1)[-1]
    if "." in basename:
        return False
    return _PROGRAM_DIR.match(path) is not None


class _Malformed(Exception):
    pass


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = _uvarint(data, pos)
    if length > MAX_STRING or pos + length > len(data):
        raise _Malformed
    return data[pos : pos + length], pos + length


def read_build_info(data: bytes) -> tuple[str, str] | None:
    """The Go version and module information embedded in ``data``, or None."""
    start = data.find(MAGIC)
    while start >= 0:
        if len(data) - start >= HEADER_SIZE and data[start + 15] & FLAG_INLINE:
            try:
                version, pos = _string(data, start + HEADER_SIZE)
                modinfo, _ = _string(data, pos)
            except _Malformed:
                pass
            else:
                # Sentinels: 16 bytes each side, the last line ending in a newline.
                if len(modinfo) >= 33 and modinfo[-17:-16] == b"\n":
                    modinfo = modinfo[16:-16]
                else:
                    modinfo = b""
                return (
                    version.decode("utf-8", errors="replace"),
                    modinfo.decode("utf-8", errors="replace"),
                )
        start = data.find(MAGIC, start + 1)
    return None


def modules(modinfo: str) -> list[tuple[str, str]]:
    """``(path, version)`` of the main module and the dependencies, replacements applied,
    in the order listed."""
    found: list[tuple[str, str] | None] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            found.append((fields[1], fields[2]))
        elif fields[0] == "=>" and found and len(fields) >= 2:
            version = fields[2] if len(fields) >= 3 else ""
            found[-1] = (fields[1], version) if version else None
    return [m for m in found if m is not None and m[1] and m[1] != "(devel)"]


def _purl(module: str, version: str) -> str:
    namespace, _, name = module.rpartition("/")
    return PackageURL(
        type="golang", namespace=namespace or None, name=name, version=version
    ).to_string()


_GO_VERSION = re.compile(r"go(\d+(?:\.\d+)*(?:(?:rc|beta)\d+)?)")


def detect(files: ImageFiles, os: OperatingSystem | None = None) -> Detected:
    packages: list[Package] = []
    issues: list[InventoryIssue] = []
    for path in files.paths():
        if not wants(path):
            continue
        entry = files.entry(path)
        if entry is None or not entry.mode & 0o111:
            continue
        if entry.size > MAX_BINARY:
            issues.append(
                InventoryIssue(
                    path,
                    f"executable over {MAX_BINARY} bytes not read for Go build info",
                    entry.layer,
                )
            )
            continue
        if entry.data is None:
            continue
        info = read_build_info(entry.data)
        if info is None:
            continue
        go_version, modinfo = info
        for module, version in modules(modinfo):
            packages.append(
                Package(
                    type=PackageType.GOLANG,
                    name=module,
                    version=version,
                    purl=_purl(module, version),
                    path=path,
                    layer=entry.layer,
                )
            )
        toolchain = _GO_VERSION.match(go_version.split(" ")[0])
        if toolchain is not None:
            version = toolchain.group(1)
            packages.append(
                Package(
                    type=PackageType.GOLANG,
                    name="stdlib",
                    version=version,
                    purl=_purl("stdlib", version),
                    path=path,
                    layer=entry.layer,
                )
            )
    return Detected(packages=tuple(packages), issues=tuple(issues))


DETECTOR = FunctionDetector("golang", wants, detect)
