"""Repository settings, resource tags, repository and registry policies, account settings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Written out in full, as 0001 is. The new ``repositories`` columns carry server defaults,
so that repositories created before this revision read as ECR's defaults (MUTABLE, no
filters, no scan on push, AES256).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _repository_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["repository_id"],
        ["repositories.id"],
        name=f"fk_{table}_repository_id_repositories",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(
            sa.Column(
                "image_tag_mutability", sa.String(32), nullable=False, server_default="MUTABLE"
            )
        )
        batch.add_column(
            sa.Column(
                "mutability_exclusion_filters",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch.add_column(
            sa.Column("scan_on_push", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("encryption_type", sa.String(16), nullable=False, server_default="AES256")
        )
        batch.add_column(sa.Column("kms_key", sa.String(2048), nullable=True))
    op.create_table(
        "repository_tags",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("key", _binary(128), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "key", name="pk_repository_tags"),
        _repository_fk("repository_tags"),
    )
    op.create_table(
        "repository_policies",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", name="pk_repository_policies"),
        _repository_fk("repository_policies"),
    )
    op.create_table(
        "registry_policies",
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", name="pk_registry_policies"),
    )
    op.create_table(
        "account_settings",
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", "name", name="pk_account_settings"),
    )


def downgrade() -> None:
    for table in (
        "account_settings",
        "registry_policies",
        "repository_policies",
        "repository_tags",
    ):
        op.drop_table(table)
    with op.batch_alter_table("repositories") as batch:
        for column in (
            "kms_key",
            "encryption_type",
            "scan_on_push",
            "mutability_exclusion_filters",
            "image_tag_mutability",
        ):
            batch.drop_column(column)
