"""Garbage collection: when each blob was last used.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

``blobs.last_used_at`` is the start of an unreferenced blob's grace period (docs/gc.md).
Blobs recorded before this revision take their ``created_at``: the oldest use we know of.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE blobs SET last_used_at = created_at")
    with op.batch_alter_table("blobs") as batch:
        batch.alter_column("last_used_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("last_used_at")
