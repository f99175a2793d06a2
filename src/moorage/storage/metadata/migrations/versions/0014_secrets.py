"""Secrets Manager: secrets, their versions (values encrypted at rest) and their tags.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Written out in full, as 0001 is. The module docstring of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _secret_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["secret_id"], ["secrets.id"], name=f"fk_{table}_secret_id_secrets", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("name", _binary(512), nullable=False),
        sa.Column("arn", _binary(2048), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kms_key_id", sa.String(2048), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("changed_at", _timestamp(), nullable=False),
        sa.Column("accessed_at", _timestamp(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_secrets"),
        sa.UniqueConstraint(
            "registry_id", "region", "name", name="uq_secrets_registry_id_region_name"
        ),
        sa.UniqueConstraint("arn", name="uq_secrets_arn"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "secret_versions",
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.String(64), nullable=False),
        sa.Column("binary", sa.Boolean(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        _secret_fk("secret_versions"),
        sa.PrimaryKeyConstraint("secret_id", "version_id", name="pk_secret_versions"),
    )
    op.create_table(
        "secret_tags",
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("key", _binary(128), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _secret_fk("secret_tags"),
        sa.PrimaryKeyConstraint("secret_id", "key", name="pk_secret_tags"),
    )


def downgrade() -> None:
    op.drop_table("secret_tags")
    op.drop_table("secret_versions")
    op.drop_table("secrets")
