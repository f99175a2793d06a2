"""What ``moorage fsck`` asks of the metadata (``ports/integrity.py``): every recorded blob,
and the references that resolve to nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, literal, select

from moorage.domain.digests import Digest
from moorage.domain.models import BlobRecord, ReferenceKind
from moorage.ports.integrity import DanglingReference
from moorage.storage.metadata.sql.rows import stored_digest
from moorage.storage.metadata.sql.tables import (
    blob_links,
    blobs,
    manifest_references,
    manifests,
    tags,
)

if TYPE_CHECKING:
    from moorage.storage.metadata.sql.store import _Statements


class SqlIntegrityRecords:
    """Integrity reads on the transaction's connection ``_c`` (set by ``_SqlTransaction``)."""

    _c: _Statements

    async def list_blobs(
        self, *, after: Digest | None = None, limit: int = 1000
    ) -> list[BlobRecord]:
        query = select(blobs).order_by(blobs.c.digest).limit(limit)
        if after is not None:
            query = query.where(blobs.c.digest > str(after))
        return [
            BlobRecord(stored_digest(row.digest), row.size, row.created_at)
            for row in await self._c.execute(query)
        ]

    async def dangling_references(self, limit: int = 1000) -> list[DanglingReference]:
        refs = manifest_references
        linked = exists().where(
            blob_links.c.repository_id == refs.c.repository_id,
            blob_links.c.digest == refs.c.child_digest,
        )
        present = exists().where(
            manifests.c.repository_id == refs.c.repository_id,
            manifests.c.digest == refs.c.child_digest,
        )
        tagged = exists().where(
            manifests.c.repository_id == tags.c.repository_id,
            manifests.c.digest == tags.c.manifest_digest,
        )

        def row_of(kind: str, repository: Any, source: Any, target: Any) -> Any:
            return select(
                repository.label("repository_id"),
                literal(kind).label("kind"),
                source.label("source"),
                target.label("target"),
            )

        queries = [
            row_of("blob", refs.c.repository_id, refs.c.manifest_digest, refs.c.child_digest).where(
                refs.c.kind == ReferenceKind.BLOB.value, ~linked
            ),
            row_of(
                "manifest", refs.c.repository_id, refs.c.manifest_digest, refs.c.child_digest
            ).where(refs.c.kind == ReferenceKind.MANIFEST.value, ~present),
            row_of("tag", tags.c.repository_id, tags.c.name, tags.c.manifest_digest).where(~tagged),
        ]
        found: list[DanglingReference] = []
        for query in queries:
            for row in await self._c.execute(query.limit(limit - len(found))):
                found.append(
                    DanglingReference(
                        int(row.repository_id), str(row.kind), str(row.source), str(row.target)
                    )
                )
            if len(found) >= limit:
                break
        return found
