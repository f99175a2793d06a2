"""The operating system, from ``etc/os-release`` or else ``usr/lib/os-release``.

The format (os-release(5)) is a list of ``KEY=value`` assignments, shell-compatible: values may
be quoted with ``"`` or ``'``, backslash escapes apply, ``#`` starts a comment line. Lines that
do not parse are skipped, as the specification asks.
"""

from __future__ import annotations

import shlex

from moorage.domain.inventory import InventoryIssue, OperatingSystem
from moorage.scanning.detect._common import layer_of
from moorage.scanning.files import ImageFiles

PATHS = ("etc/os-release", "usr/lib/os-release")


def wants(path: str) -> bool:
    return path in PATHS


def parse(text: str) -> dict[str, str]:
    """The assignments in an os-release file, unquoted."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:  # unbalanced quotes
            continue
        if len(tokens) != 1 or "=" not in tokens[0]:
            continue
        key, _, value = tokens[0].partition("=")
        if key.replace("_", "").isalnum() and key.isupper():
            fields[key] = value
    return fields


def from_fields(fields: dict[str, str]) -> OperatingSystem | None:
    os_id = fields.get("ID", "").strip().lower()
    if not os_id:
        return None
    return OperatingSystem(
        id=os_id,
        version_id=fields.get("VERSION_ID") or None,
        version_codename=fields.get("VERSION_CODENAME") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
    )


def detect(files: ImageFiles) -> tuple[OperatingSystem | None, list[InventoryIssue]]:
    """The image's operating system (None when no os-release names one) and any issue."""
    for path in PATHS:
        data = files.read(path)
        if data is None:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, [InventoryIssue(path, "os-release is not UTF-8", layer_of(files, path))]
        os = from_fields(parse(text))
        if os is None:
            return None, [InventoryIssue(path, "os-release has no ID", layer_of(files, path))]
        return os, []
    return None, []
