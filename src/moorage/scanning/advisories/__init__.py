"""Imported vulnerability data: advisory records, their parsers and where they are read from.

``model`` holds the OSV-shaped records the matcher works on, ``osv`` parses OSV documents (JSON or
YAML) into them, the other parsers read the Debian Security Tracker, Alpine secdb and Node.js
formats, and ``sources`` walks files, folders and archives of any of them.

The names below are imported on first use: the metadata store imports ``keys`` and ``model``
with every command, and the parsers (YAML, univers) would slow every start for nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moorage.scanning.advisories.model import Advisory, Affected, Range
    from moorage.scanning.advisories.osv import InvalidAdvisory, parse_osv
    from moorage.scanning.advisories.sources import RecordError, iter_records

_EXPORTS = {
    "Advisory": "model",
    "Affected": "model",
    "Range": "model",
    "InvalidAdvisory": "osv",
    "parse_osv": "osv",
    "RecordError": "sources",
    "iter_records": "sources",
}

__all__ = [
    "Advisory",
    "Affected",
    "InvalidAdvisory",
    "Range",
    "RecordError",
    "iter_records",
    "parse_osv",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
