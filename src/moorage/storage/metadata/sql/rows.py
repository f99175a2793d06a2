"""Row helpers that every part of the SQL store shares (``store.py`` and its mixins
``identities.py``, ``jobs.py``, ``lifecycle.py``): chunking IN lists, paging by a composite
key, and turning stored values back into domain values without re-validating what the store
itself wrote."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, and_, or_

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


def after_key(
    columns: Sequence[ColumnElement[Any]], values: Sequence[object]
) -> ColumnElement[bool]:
    """Rows whose ``columns`` come strictly after ``values`` in lexicographic order, for
    keyset pagination over a composite key. Spelled out rather than as a row-value
    comparison, with a redundant ``first >= value``: from that term SQLite starts its walk of
    an index on ``columns`` at the cursor, where from the OR alone it walks the whole index."""
    (column, *rest_columns), (value, *rest_values) = columns, values
    if not rest_columns:
        return column > value
    later = or_(column > value, and_(column == value, after_key(rest_columns, rest_values)))
    return and_(column >= value, later)


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
        region=row.region,
    )
