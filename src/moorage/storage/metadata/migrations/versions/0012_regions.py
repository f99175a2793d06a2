"""Regions: what belongs to a registry is keyed by (registry_id, region).

A ``region`` column on repositories, registry_policies, account_settings,
registry_scanning_configurations and lifecycle_runs, in their keys. Existing rows are given
the deployment's configured region, which ``upgrade_database`` passes in
``config.attributes["region"]`` (tables.py's docstring explains the key).

On SQLite the tables are rebuilt (batch operations); ``upgrade_database`` runs migrations
with foreign keys off there, as SQLite's procedure for rebuilding a table requires
(dropping the old ``repositories`` would otherwise cascade to every image), and checks them
before committing. The rebuilt ``repositories`` has AUTOINCREMENT again (the rebuild of
0003 lost it), with its sequence kept where there is one, so that the id of a deleted
repository is never given to a new one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_REGION = "us-east-1"
REGION_LENGTH = 32

# The registry-level tables and their new primary keys (the old ones lack "region").
_KEYED = {
    "registry_policies": ("registry_id", "region"),
    "account_settings": ("registry_id", "region", "name"),
    "registry_scanning_configurations": ("registry_id", "region"),
}


def _add_region(table: str, region: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(sa.Column("region", sa.String(REGION_LENGTH), nullable=True))
    op.execute(sa.text(f"UPDATE {table} SET region = :region").bindparams(region=region))


def upgrade() -> None:
    region = context.config.attributes.get("region", DEFAULT_REGION)
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    sequence = None
    if sqlite:
        sequence = bind.execute(
            sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'repositories'")
        ).scalar()

    _add_region("repositories", region)
    with op.batch_alter_table(
        "repositories",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch:
        batch.alter_column("region", existing_type=sa.String(REGION_LENGTH), nullable=False)
        batch.drop_constraint("uq_repositories_registry_id_name", type_="unique")
        batch.create_unique_constraint(
            "uq_repositories_registry_id_region_name", ["registry_id", "region", "name"]
        )
    if sequence is not None:
        bind.execute(
            sa.text(
                "UPDATE sqlite_sequence SET seq = max(seq, :seq) WHERE name = 'repositories'"
            ).bindparams(seq=sequence)
        )

    for table, key in _KEYED.items():
        _add_region(table, region)
        with op.batch_alter_table(table) as batch:
            batch.alter_column("region", existing_type=sa.String(REGION_LENGTH), nullable=False)
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", list(key))

    _add_region("lifecycle_runs", region)
    op.drop_index("ix_lifecycle_runs_registry_id_repository_name", table_name="lifecycle_runs")
    with op.batch_alter_table(
        "lifecycle_runs", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.alter_column("region", existing_type=sa.String(REGION_LENGTH), nullable=False)
    op.create_index(
        "ix_lifecycle_runs_registry_id_region_repository_name",
        "lifecycle_runs",
        ["registry_id", "region", "repository_name"],
    )


def downgrade() -> None:
    raise NotImplementedError("regions cannot be merged back into one registry")
