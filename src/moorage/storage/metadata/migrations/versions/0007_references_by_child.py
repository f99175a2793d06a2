"""Find who references a digest through one covering index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

The index on ``manifest_references (child_digest, repository_id)`` was not covering, so SQLite,
without statistics, preferred the covering primary key on ``repository_id`` alone: deleting a
manifest, or asking whether an index lists it, walked every reference of the repository. The
new index carries every column, child first.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "ix_manifest_references_child_digest_repository_id"
_NEW = "ix_manifest_references_by_child"


def upgrade() -> None:
    op.create_index(
        _NEW, "manifest_references", ["child_digest", "repository_id", "kind", "manifest_digest"]
    )
    op.drop_index(_OLD, table_name="manifest_references")


def downgrade() -> None:
    op.create_index(_OLD, "manifest_references", ["child_digest", "repository_id"])
    op.drop_index(_NEW, table_name="manifest_references")
