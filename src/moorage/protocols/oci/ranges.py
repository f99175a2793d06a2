"""HTTP ``Range`` (requests for part of a blob) and ``Content-Range`` (chunk uploads)."""

from __future__ import annotations

import re

from moorage.domain.errors import UploadInvalid

_BYTE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)$")


class UnsatisfiableRange(Exception):
    """The requested range lies outside the blob (HTTP 416)."""


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` for a single ``Range: bytes=...``; None to serve everything.

    Malformed or multi-range headers are ignored (RFC 9110 allows serving the whole
    representation). Raises UnsatisfiableRange.
    """
    if header is None:
        return None
    match = _BYTE_RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise UnsatisfiableRange
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise UnsatisfiableRange
    return start, end


def parse_chunk_range(header: str | None) -> tuple[int, int] | None:
    """``(start, end_inclusive)`` of a ``Content-Range`` on a PATCH; None when absent.

    Raises UploadInvalid for a header that is present but malformed. A backwards range
    is returned as is: the upload service answers it as out of order (416).
    """
    if header is None:
        return None
    match = _CHUNK_RANGE.match(header.strip())
    if match is None:
        raise UploadInvalid(f"malformed Content-Range {header[:64]!r}; expected <start>-<end>")
    return int(match.group(1)), int(match.group(2))


def upload_range(size: int) -> str:
    """The ``Range`` header of an upload holding ``size`` bytes (``0-0`` when empty, as
    distribution answers)."""
    return f"0-{max(size - 1, 0)}"
