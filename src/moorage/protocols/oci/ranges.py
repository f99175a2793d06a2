"""HTTP ``Range`` (requests for part of a blob) and ``Content-Range`` (chunk uploads)."""

from __future__ import annotations

import re

from moorage.domain.errors import UploadInvalid

# ASCII digits only: ``\d`` would take any script's digits, and int() reads them too.
_BYTE_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_CHUNK_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)")
# Past this many digits a position is larger than any blob: it is read as BEYOND rather than
# converted (Python refuses int() of more than 4,300 digits, and nothing needs the value).
_MAX_DIGITS = 18
BEYOND: int = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    """The value of a run of ASCII digits, or :data:`BEYOND` when it has too many."""
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return BEYOND
    return int(significant or "0")


class UnsatisfiableRange(Exception):
    """The requested range lies outside the blob (HTTP 416)."""


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` for a single ``Range: bytes=...``; None to serve everything.

    Malformed or multi-range headers are ignored (RFC 9110 allows serving the whole
    representation). Raises UnsatisfiableRange.
    """
    if header is None:
        return None
    match = _BYTE_RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange
        return max(size - suffix, 0), size - 1
    start = _position(first)
    end = size - 1 if last == "" else min(_position(last), size - 1)
    if start >= size or (last != "" and _position(last) < start):
        raise UnsatisfiableRange
    return start, end


def parse_chunk_range(header: str | None) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` of a ``Content-Range`` on a PATCH; None when absent.

    Raises UploadInvalid for a header that is present but malformed. A backwards range
    is returned as is: the upload service answers it as out of order (416).
    """
    if header is None:
        return None
    match = _CHUNK_RANGE.fullmatch(header.strip())
    if match is None:
        raise UploadInvalid(f"malformed Content-Range {header[:64]!r}; expected <start>-<end>")
    # A position past any blob cannot continue an upload: the service answers 416.
    return _position(match.group(1)), _position(match.group(2))


def upload_range(size: int) -> str:
    """The ``Range`` header of an upload holding ``size`` bytes (``0-0`` when empty, as
    distribution answers)."""
    return f"0-{max(size - 1, 0)}"
