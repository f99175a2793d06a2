"""Row helpers that every part of the SQL store shares (``store.py`` and its mixins
``identities.py``, ``jobs.py``, ``lifecycle.py``): chunking IN lists, and turning stored
values back into domain values without re-validating what the store itself wrote."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Row

from moorage.domain.digests import Digest
from moorage.domain.models import Repository, TagMutability

_T = TypeVar("_T")

# Values per IN list (and rows per multi-row INSERT): well under SQLite's variable limit.
IN_CHUNK = 500


def chunks(items: Iterable[_T], size: int = IN_CHUNK) -> Iterator[list[_T]]:
    """``items`` in lists of at most ``size``."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def stored_digest(text: str) -> Digest:
    """A digest column. Written from a validated Digest: splitting is enough, and cheaper
    than parsing."""
    algorithm, _, encoded = text.partition(":")
    return Digest(algorithm, encoded)


def stored_time(value: datetime | str) -> datetime:
    """A time column read without its type (``type_coerce(column, String())``): SQLite's
    UTC text, which ``fromisoformat`` parses far faster than the column type does, or the
    driver's aware datetime on PostgreSQL."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def repository_of(row: Row[Any]) -> Repository:
    """A ``repositories`` row (it may carry other tables' columns too)."""
    return Repository(
        id=row.id,
        registry_id=row.registry_id,
        name=row.name,
        created_at=row.created_at,
        image_tag_mutability=TagMutability(row.image_tag_mutability),
        mutability_exclusion_filters=tuple(row.mutability_exclusion_filters),
        scan_on_push=bool(row.scan_on_push),
        encryption_type=row.encryption_type,
        kms_key=row.kms_key,
    )
