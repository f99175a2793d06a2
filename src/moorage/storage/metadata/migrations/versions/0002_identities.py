"""Identities: accounts, IAM users, access keys and inline user policies.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Written out in full rather than imported from sql/tables.py (see 0001). The module docstring
of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", name="pk_accounts"),
    )
    op.create_table(
        "iam_users",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("name", _binary(64), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_iam_users"),
        sa.ForeignKeyConstraint(
            ["registry_id"],
            ["accounts.registry_id"],
            name="fk_iam_users_registry_id_accounts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("registry_id", "name", name="uq_iam_users_registry_id_name"),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_access_keys"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_users.user_id"],
            name="fk_access_keys_user_id_iam_users",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_access_keys_user_id", "access_keys", ["user_id"])
    op.create_table(
        "user_policies",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("name", _binary(128), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "name", name="pk_user_policies"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["iam_users.user_id"],
            name="fk_user_policies_user_id_iam_users",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    for table in ("user_policies", "access_keys", "iam_users", "accounts"):
        op.drop_table(table)
