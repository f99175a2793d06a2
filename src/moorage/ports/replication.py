"""The replication records port: a registry's replication configuration, the status of each
image's copy to each destination, and the ordering guard of the tags replication writes.

Part of every metadata transaction (``MetadataTransaction`` includes
:class:`ReplicationRecords`). Registry-level records are those of the transaction's region.
The SQL schema is in ``storage/metadata/sql/tables.py``; the replication itself in
``services/replication.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from moorage.domain.digests import Digest
from moorage.domain.replication import Destination, ReplicationConfiguration, ReplicationStatus


@dataclass(frozen=True, slots=True)
class ImageReplication:
    """The copy of one source image to one destination."""

    destination: Destination
    status: ReplicationStatus
    failure_code: str | None
    updated_at: datetime


class ReplicationRecords(Protocol):
    async def get_replication_configuration(
        self, registry_id: str
    ) -> ReplicationConfiguration | None:
        """The configuration put in this region (None: never put)."""
        ...

    async def put_replication_configuration(
        self, registry_id: str, config: ReplicationConfiguration, now: datetime
    ) -> None:
        """Replace the configuration of this region."""
        ...

    async def set_image_replication(
        self,
        repository_id: int,
        digest: Digest,
        destination: Destination,
        status: ReplicationStatus,
        now: datetime,
        *,
        failure_code: str | None = None,
    ) -> None:
        """Record the state of a copy (the image must exist; a deleted one is ignored)."""
        ...

    async def image_replications(
        self, repository_id: int, digest: Digest
    ) -> list[ImageReplication]:
        """Every destination the image was sent to, by destination."""
        ...

    async def claim_replicated_tag(self, repository_id: int, tag: str, pushed_at: datetime) -> bool:
        """Whether a copy of the source push made at ``pushed_at`` may set ``tag``: True (and
        ``pushed_at`` recorded) unless a copy of a later push set it already. Two sources
        replicating into one repository are ordered by their push times alike."""
        ...


@dataclass(frozen=True, slots=True)
class Backfill:
    """One StartReplicationBackfill: existing images copied to one destination."""

    id: str
    registry_id: str
    destination: Destination
    status: str  # PREPARING, IN_PROGRESS, COMPLETE, FAILED, STOPPING, STOPPED
    total: int
    completed: int
    failed: int
    failure_codes: tuple[str, ...]
    stop_requested: bool
    started_at: datetime
    ended_at: datetime | None = None
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class BackfillResult:
    seq: int
    repository: str
    digest: Digest
    tag: str | None
    status: str  # COMPLETE or FAILED
    failure_code: str | None = None


class BackfillRecords(Protocol):
    async def create_backfill(self, backfill: Backfill) -> None: ...

    async def get_backfill(self, registry_id: str, backfill_id: str) -> Backfill | None:
        """The registry's backfill in this region."""
        ...

    async def list_backfills(self, registry_id: str, limit: int) -> list[Backfill]:
        """The registry's backfills in this region, newest first."""
        ...

    async def update_backfill(self, backfill_id: str, **changes: Any) -> None:
        """Set the fields named (those of :class:`Backfill` but its key)."""
        ...

    async def add_backfill_result(self, backfill_id: str, result: BackfillResult) -> None: ...

    async def backfill_results(
        self, backfill_id: str, *, status: str | None, after: int, limit: int
    ) -> list[BackfillResult]:
        """Results past ``after`` (a seq), in order, of ``status`` when given."""
        ...

    async def delete_backfills_ended_before(self, registry_id: str, cutoff: datetime) -> int: ...
