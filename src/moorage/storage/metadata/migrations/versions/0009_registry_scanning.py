"""The registry scanning configuration.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

One row per registry that has put one (PutRegistryScanningConfiguration); a registry without a
row reads as ECR's default, BASIC without rules, so existing registries need no data.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_scanning_configurations",
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("scan_type", sa.String(64), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", name="pk_registry_scanning_configurations"),
    )


def downgrade() -> None:
    op.drop_table("registry_scanning_configurations")
