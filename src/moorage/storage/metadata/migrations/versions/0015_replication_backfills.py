"""Replication backfills (StartReplicationBackfill) and their per-image results.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Written out in full, as 0001 is. The module docstring of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "replication_backfills",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("destination_region", sa.String(32), nullable=False),
        sa.Column("destination_registry_id", sa.String(12), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("failure_codes", sa.JSON(), nullable=False),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("ended_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_replication_backfills"),
    )
    op.create_index(
        "ix_replication_backfills_registry_id_region_started_at",
        "replication_backfills",
        ["registry_id", "region", "started_at"],
    )
    op.create_table(
        "backfill_results",
        sa.Column("backfill_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("repository_name", _binary(256), nullable=False),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("tag", _binary(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["backfill_id"],
            ["replication_backfills.id"],
            name="fk_backfill_results_backfill_id_replication_backfills",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backfill_id", "seq", name="pk_backfill_results"),
    )


def downgrade() -> None:
    op.drop_table("backfill_results")
    op.drop_index(
        "ix_replication_backfills_registry_id_region_started_at",
        table_name="replication_backfills",
    )
    op.drop_table("replication_backfills")
