"""ECR Public: the accounts' public registries and their repositories' catalog data; the
pull count of every manifest (the gallery shows it).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Written out in full, as 0001 is. The module docstring of tables.py explains the schema;
public repositories themselves are rows of ``repositories`` in the namespace 'public'.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "manifests", sa.Column("pull_count", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.create_table(
        "public_registries",
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("alias", _binary(50), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False, server_default=""),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", name="pk_public_registries"),
        sa.UniqueConstraint("alias", name="uq_public_registries_alias"),
    )
    op.create_table(
        "public_catalog_data",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("architectures", sa.JSON(), nullable=False),
        sa.Column("operating_systems", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("about_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("usage_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_public_catalog_data_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name="pk_public_catalog_data"),
    )


def downgrade() -> None:
    op.drop_table("public_catalog_data")
    op.drop_table("public_registries")
    with op.batch_alter_table("manifests") as batch:
        batch.drop_column("pull_count")
