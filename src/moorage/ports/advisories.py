"""The advisory records port: the vulnerability database the scanner matches packages against.

Part of every metadata transaction (``MetadataTransaction`` includes :class:`AdvisoryRecords`).
The data comes from files imported offline (``moorage advisories import``; air-gapped sites copy
the archives in), never from the network. The SQL schema is in
``storage/metadata/sql/tables.py``; reading the files in ``moorage.scanning.advisories``.

- An **import** reads one file, folder or archive (its ``location``) under a **source** name (the
  file's name, e.g. ``pypa-advisory-db-3ccb612.tar.gz``). It is begun, fed advisories in many
  short transactions, and finished with its counts; an import that never finishes (the command
  was killed) keeps what it wrote.
- An **advisory** is stored once per (source, advisory id): putting it again replaces it. It is
  indexed under the :func:`~moorage.scanning.advisories.keys.package_key` of every affected
  package, and remembers when it was last written (changed), which is what continuous scanning
  asks for.

Advisories are registry-wide reference data, not account data: the emulator's reset keeps them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from moorage.scanning.advisories.keys import PackageKey
from moorage.scanning.advisories.model import Advisory

# Bounds of the stored values (OSV ids are short; Go module paths and Maven coordinates are the
# longest package names). put_advisories raises ValueError beyond them; importers skip such records.
ADVISORY_SOURCE_LENGTH = 255
ADVISORY_ID_LENGTH = 255
ECOSYSTEM_LENGTH = 128
PACKAGE_NAME_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class AdvisorySource:
    """One source as its latest import left it.

    ``records`` counts the advisories stored for the source now (every import's, replaced ones
    once); ``errors`` are the latest finished import's unreadable records. ``finished_at`` is None
    while the latest import runs (or when it was interrupted). ``newest_modified`` is the latest
    ``modified`` among the stored advisories (``published`` for those that give no
    ``modified``): how fresh the data itself is.
    """

    name: str
    location: str
    started_at: datetime
    finished_at: datetime | None
    records: int
    errors: int
    newest_modified: datetime | None


def advisory_fits(advisory: Advisory) -> str | None:
    """Why :meth:`AdvisoryRecords.put_advisories` would refuse ``advisory``, or None."""
    if len(advisory.id) > ADVISORY_ID_LENGTH:
        return f"advisory id longer than {ADVISORY_ID_LENGTH} characters"
    for affected in advisory.affected:
        if len(affected.ecosystem) > ECOSYSTEM_LENGTH:
            return f"ecosystem name longer than {ECOSYSTEM_LENGTH} characters"
        if len(affected.package) > PACKAGE_NAME_LENGTH:
            return f"package name longer than {PACKAGE_NAME_LENGTH} characters"
    return None


class AdvisoryRecords(Protocol):
    # -- imports ------------------------------------------------------------------------
    async def begin_advisory_import(self, source: str, location: str, at: datetime) -> int:
        """Record an import of ``location`` under ``source``, started ``at``; return its id."""
        ...

    async def put_advisories(
        self, import_id: int, advisories: Sequence[Advisory], at: datetime | None = None
    ) -> None:
        """Store ``advisories`` under the import's source, written ``at`` (default: when the
        import started; pass the time of each batch so that :meth:`keys_changed_since` sees
        late batches as late).

        An advisory already stored under the same (source, id) is replaced, with its index
        rows; when its stored form is unchanged it is left alone, written when it was (a
        re-import of the same database changes nothing a rescan would look at). Within
        ``advisories`` the last of one id wins. Raises ValueError, storing nothing, for an
        advisory :func:`advisory_fits` refuses, and when the import is unknown.
        """
        ...

    async def finish_advisory_import(
        self, import_id: int, at: datetime, records: int, errors: int
    ) -> None:
        """Record that the import ended ``at`` having read ``records`` advisories and skipped
        ``errors`` unreadable ones. Unknown ids are ignored."""
        ...

    async def forget_advisory_source(self, source: str) -> int:
        """Delete the source's advisories and imports; how many advisories went."""
        ...

    async def withdraw_advisories(
        self, source: str, kept: Collection[str]
    ) -> tuple[int, set[PackageKey]]:
        """Delete the advisories of ``source`` whose ids are not in ``kept``: a complete
        import of a newer download of the database no longer has them. Returns how many went
        and the keys they were indexed under (images with those packages need a rescan)."""
        ...

    # -- lookups ------------------------------------------------------------------------
    async def advisories_for(self, keys: Iterable[PackageKey]) -> dict[PackageKey, list[Advisory]]:
        """The advisories indexed under each of ``keys`` (made by ``package_key``), ordered by
        source then id; a key with none is absent. An advisory comes whole (all its affected
        packages), once per key it is indexed under."""
        ...

    async def advisory_sources(self) -> list[AdvisorySource]:
        """Every source imported, by name."""
        ...

    async def advisories_updated_at(self) -> datetime | None:
        """When the database last changed: the end of the latest finished import (ECR's
        ``vulnerabilitySourceUpdatedAt``); None before any import finished."""
        ...

    async def keys_changed_since(self, at: datetime) -> set[PackageKey]:
        """The keys of the advisories written at or after ``at`` (by the ``at`` they were put
        with), before and after a change: images with these packages need a rescan.

        A batch becomes visible when its transaction commits, a little after its ``at``: a
        caller that polls should ask from a while before its previous poll (e.g. a minute).
        Keys an advisory no longer lists after a change are not included (their findings go
        at the rescan of what they still match, or when the image is rescanned anyway).
        """
        ...
