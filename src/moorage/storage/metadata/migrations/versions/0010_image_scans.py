"""Image scans: the latest scan of each image, with its findings, and the packages it found.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Written out in full, as 0001 is. The module docstring of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "image_scans",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("scan_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("requested_at", _timestamp(), nullable=False),
        sa.Column("completed_at", _timestamp(), nullable=True),
        sa.Column("advisories_updated_at", _timestamp(), nullable=True),
        sa.Column("severity_counts", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("sbom_digest", _binary(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id", "digest"],
            ["manifests.repository_id", "manifests.digest"],
            name="fk_image_scans_repository_id_manifests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_image_scans"),
    )
    op.create_table(
        "image_scan_packages",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("ecosystem", _binary(128), nullable=False),
        sa.Column("name", _binary(1024), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id", "digest"],
            ["image_scans.repository_id", "image_scans.digest"],
            name="fk_image_scan_packages_repository_id_image_scans",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "repository_id", "digest", "ecosystem", "name", name="pk_image_scan_packages"
        ),
    )
    op.create_index(
        "ix_image_scan_packages_ecosystem_name", "image_scan_packages", ["ecosystem", "name"]
    )


def downgrade() -> None:
    op.drop_index("ix_image_scan_packages_ecosystem_name", table_name="image_scan_packages")
    op.drop_table("image_scan_packages")
    op.drop_table("image_scans")
