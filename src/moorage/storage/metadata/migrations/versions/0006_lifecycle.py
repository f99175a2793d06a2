"""Lifecycle policies: the policy per repository, its current preview, and the audit trail.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Written out in full, as 0001 is. The module docstring of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lifecycle_policies",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("set_at", _timestamp(), nullable=False),
        sa.Column("last_evaluated_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_lifecycle_policies_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name="pk_lifecycle_policies"),
    )
    op.create_table(
        "lifecycle_previews",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_lifecycle_previews_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", name="pk_lifecycle_previews"),
    )
    op.create_table(
        "lifecycle_preview_results",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("tagged", sa.Boolean(), nullable=False),
        sa.Column("pushed_at", _timestamp(), nullable=False),
        sa.Column("rule_priority", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("target_storage_class", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["lifecycle_previews.repository_id"],
            name="fk_lifecycle_preview_results_repository_id_lifecycle_previews",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_lifecycle_preview_results"),
    )
    op.create_table(
        "lifecycle_runs",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("repository_name", _binary(256), nullable=False),
        sa.Column("policy_text", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lifecycle_runs"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_lifecycle_runs_registry_id_repository_name",
        "lifecycle_runs",
        ["registry_id", "repository_name"],
    )
    op.create_table(
        "lifecycle_run_images",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("rule_priority", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["lifecycle_runs.id"],
            name="fk_lifecycle_run_images_run_id_lifecycle_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "digest", name="pk_lifecycle_run_images"),
    )


def downgrade() -> None:
    op.drop_table("lifecycle_run_images")
    op.drop_index("ix_lifecycle_runs_registry_id_repository_name", table_name="lifecycle_runs")
    op.drop_table("lifecycle_runs")
    op.drop_table("lifecycle_preview_results")
    op.drop_table("lifecycle_previews")
    op.drop_table("lifecycle_policies")
