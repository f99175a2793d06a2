"""The size a manifest declares for each blob it references (manifest_references.declared_size).

Emulator mode stores fixture images whose blobs were never uploaded; their image size is the
sum of these. Rows written before are left NULL: their blobs exist, and the stored size is
used.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("manifest_references") as batch:
        batch.add_column(sa.Column("declared_size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("manifest_references") as batch:
        batch.drop_column("declared_size")
