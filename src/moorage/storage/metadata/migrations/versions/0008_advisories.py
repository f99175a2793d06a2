"""The advisory database: imports, advisories, and their index by package.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27

Written out in full, as 0001 is. The advisory section of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "advisory_imports",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("source", _binary(255), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=True),
        sa.Column("errors", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_advisory_imports"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_advisory_imports_source", "advisory_imports", ["source"])
    op.create_table(
        "advisories",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("source", _binary(255), nullable=False),
        sa.Column("advisory_id", _binary(255), nullable=False),
        sa.Column("modified", _timestamp(), nullable=True),
        sa.Column("written_at", _timestamp(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_advisories"),
        sa.UniqueConstraint("source", "advisory_id", name="uq_advisories_source_advisory_id"),
    )
    op.create_index("ix_advisories_written_at", "advisories", ["written_at"])
    op.create_table(
        "advisory_packages",
        sa.Column("ecosystem", _binary(128), nullable=False),
        sa.Column("name", _binary(1024), nullable=False),
        sa.Column("advisory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisory_id"],
            ["advisories.id"],
            name="fk_advisory_packages_advisory_id_advisories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ecosystem", "name", "advisory_id", name="pk_advisory_packages"),
    )
    op.create_index("ix_advisory_packages_advisory_id", "advisory_packages", ["advisory_id"])


def downgrade() -> None:
    op.drop_index("ix_advisory_packages_advisory_id", table_name="advisory_packages")
    op.drop_table("advisory_packages")
    op.drop_index("ix_advisories_written_at", table_name="advisories")
    op.drop_table("advisories")
    op.drop_index("ix_advisory_imports_source", table_name="advisory_imports")
    op.drop_table("advisory_imports")
