"""Imported vulnerability data: advisory records, their parsers and where they are read from.

``model`` holds the OSV-shaped records the matcher works on, ``osv`` parses OSV documents (JSON or
YAML) into them, and ``sources`` walks files, folders and archives of such documents.
"""

from moorage.scanning.advisories.model import Advisory, Affected, Range
from moorage.scanning.advisories.osv import InvalidAdvisory, parse_osv
from moorage.scanning.advisories.sources import RecordError, iter_records

__all__ = [
    "Advisory",
    "Affected",
    "InvalidAdvisory",
    "Range",
    "RecordError",
    "iter_records",
    "parse_osv",
]
