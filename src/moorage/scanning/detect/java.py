"""Java archives: ``*.jar``, ``*.war``, ``*.ear``, and the archives nested one level inside
them (``BOOT-INF/lib/*.jar`` of a Spring Boot fat jar, ``WEB-INF/lib/*.jar`` of a war, the
modules of an ear).

Each archive is read as a zip, in memory:

1. Every ``META-INF/maven/<group>/<artifact>/pom.properties`` (Maven's archiver writes one per
   module, and shaded jars keep those of what they bundle) gives ``groupId``, ``artifactId``,
   ``version``: ``pkg:maven/<group>/<artifact>@<version>``. This is what Maven advisories
   (OSV's ``Maven`` ecosystem, ``group:artifact``) name.
2. Only when an archive has none of those, the main section of ``META-INF/MANIFEST.MF``, a
   guess of lower confidence: the version is ``Implementation-Version``, else
   ``Bundle-Version``; the artifact is the file name without ``-<version>.jar`` when the
   file is named that way (Maven's convention), else ``Implementation-Title`` if it is a
   single word, else ``Bundle-SymbolicName``; the group is ``Implementation-Vendor-Id``
   (Maven's archiver writes the group id there) or, failing that, none, and the purl then
   has no namespace (``pkg:maven/foo@1.0``), which no Maven advisory will match. Without a
   version or an artifact, nothing is reported.

Packages found in a nested archive are recorded at the outer archive's path (the file in the
image; the layer that wrote it).

Bounds, against zip bombs and huge archives: at most :data:`MAX_ENTRIES` entries per archive
are looked at, a properties or manifest file is read up to :data:`MAX_TEXT` bytes, a nested
archive up to :data:`MAX_NESTED` bytes (over that, it is skipped and reported), and at most
:data:`MAX_NESTED_ARCHIVES` nested archives per archive. A file that is not a readable zip is
reported as an issue.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from packageurl import PackageURL

from moorage.domain.inventory import InventoryIssue, OperatingSystem, Package, PackageType
from moorage.scanning.files import ImageFiles
from moorage.scanning.inventory import Detected, FunctionDetector

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")
MAX_ENTRIES = 100_000
MAX_TEXT = 64 * 1024
MAX_NESTED = 64 * 1024 * 1024
MAX_NESTED_ARCHIVES = 2_000

#: What reading a damaged, encrypted or exotic zip may raise.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,  # an encrypted entry
    NotImplementedError,  # a compression method zipfile lacks
)

_POM_PROPERTIES = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")


def wants(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True, slots=True)
class Coordinates:
    group: str | None
    artifact: str
    version: str


class _TooBig(Exception):
    pass


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The entry's bytes, at most ``limit`` (whatever its header claims)."""
    if info.file_size > limit:
        raise _TooBig
    with archive.open(info) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise _TooBig
    return data


def parse_properties(text: str) -> dict[str, str]:
    """``key=value`` (or ``key: value``) lines of a Java properties file; comments skipped.
    Enough for pom.properties, which Maven writes plainly."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a jar manifest (continuation lines start with one space)."""
    values: dict[str, str] = {}
    last: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            break  # the end of the main section
        if line.startswith(" ") and last is not None:
            values[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            values[last] = value.strip()
    return values


def _from_manifest(manifest: dict[str, str], file_name: str) -> Coordinates | None:
    version = manifest.get("Implementation-Version") or manifest.get("Bundle-Version")
    if not version:
        return None
    stem = re.sub(r"\.(?:jar|war|ear)$", "", file_name, flags=re.IGNORECASE)
    artifact: str | None = None
    if stem.endswith("-" + version):
        artifact = stem[: -len(version) - 1]
    elif (title := manifest.get("Implementation-Title", "")) and " " not in title:
        artifact = title
    elif symbolic := manifest.get("Bundle-SymbolicName", "").split(";")[0].strip():
        artifact = symbolic
    if not artifact:
        return None
    return Coordinates(manifest.get("Implementation-Vendor-Id") or None, artifact, version)


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def read_archive(
    data: bytes, file_name: str, *, nested: bool = True
) -> tuple[list[Coordinates], list[str]]:
    """The coordinates found in the archive ``data`` (and, when ``nested``, in the archives
    it holds), and problems met. Raises one of :data:`_ZIP_ERRORS` when ``data`` is no
    readable zip."""
    found: list[Coordinates] = []
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            problems.append(f"{file_name}: over {MAX_ENTRIES} entries, the rest not read")
            infos = infos[:MAX_ENTRIES]
        manifest_info: zipfile.ZipInfo | None = None
        inner: list[zipfile.ZipInfo] = []
        for info in infos:
            if info.is_dir():
                continue
            if _POM_PROPERTIES.match(info.filename):
                try:
                    props = parse_properties(
                        _read(archive, info, MAX_TEXT).decode("utf-8", errors="replace")
                    )
                except _TooBig:
                    problems.append(f"{file_name}: {info.filename} over {MAX_TEXT} bytes")
                    continue
                group, artifact, version = (
                    props.get("groupId"),
                    props.get("artifactId"),
                    props.get("version"),
                )
                if group and artifact and version:
                    found.append(Coordinates(group, artifact, version))
            elif info.filename == "META-INF/MANIFEST.MF":
                manifest_info = info
            elif nested and _is_archive(info.filename):
                inner.append(info)
        if not found and manifest_info is not None:
            try:
                text = _read(archive, manifest_info, MAX_TEXT).decode("utf-8", errors="replace")
            except _TooBig:
                problems.append(f"{file_name}: META-INF/MANIFEST.MF over {MAX_TEXT} bytes")
            else:
                guessed = _from_manifest(parse_manifest(text), file_name)
                if guessed is not None:
                    found.append(guessed)
        if len(inner) > MAX_NESTED_ARCHIVES:
            problems.append(
                f"{file_name}: over {MAX_NESTED_ARCHIVES} nested archives, the rest not read"
            )
            inner = inner[:MAX_NESTED_ARCHIVES]
        for info in inner:
            inner_name = info.filename.rsplit("/", 1)[-1]
            try:
                inner_data = _read(archive, info, MAX_NESTED)
                inner_found, inner_problems = read_archive(inner_data, inner_name, nested=False)
            except _TooBig:
                problems.append(f"{file_name}: {info.filename} over {MAX_NESTED} bytes, not read")
                continue
            except _ZIP_ERRORS:
                problems.append(f"{file_name}: {info.filename} is not a readable archive")
                continue
            found.extend(inner_found)
            problems.extend(f"{file_name}!{p}" for p in inner_problems)
    return found, problems


def detect(files: ImageFiles, os: OperatingSystem | None = None) -> Detected:
    packages: list[Package] = []
    issues: list[InventoryIssue] = []
    for path, entry, data in files.kept(wants):
        file_name = path.rsplit("/", 1)[-1]
        try:
            found, problems = read_archive(data, file_name)
        except _ZIP_ERRORS:
            issues.append(InventoryIssue(path, "not a readable Java archive", entry.layer))
            continue
        issues.extend(InventoryIssue(path, problem, entry.layer) for problem in problems)
        seen: set[Coordinates] = set()
        for coordinates in found:
            if coordinates in seen:
                continue
            seen.add(coordinates)
            purl = PackageURL(
                type="maven",
                namespace=coordinates.group,
                name=coordinates.artifact,
                version=coordinates.version,
            ).to_string()
            packages.append(
                Package(
                    type=PackageType.MAVEN,
                    name=coordinates.artifact,
                    version=coordinates.version,
                    purl=purl,
                    path=path,
                    layer=entry.layer,
                    namespace=coordinates.group,
                )
            )
    return Detected(packages=tuple(packages), issues=tuple(issues))


DETECTOR = FunctionDetector("java", wants, detect)
