"""Replication (its configuration, each image's copies, the tags it wrote), pull-through cache
rules, repository creation templates, and what the cache knows of its upstream.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Written out in full, as 0001 is. The module docstring of tables.py explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _registry_key() -> list[sa.Column[str]]:
    return [
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
    ]


def _manifest_key(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", _binary(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id", "digest"],
            ["manifests.repository_id", "manifests.digest"],
            name=f"fk_{table}_repository_id_manifests",
            ondelete="CASCADE",
        ),
    ]


def _repository_tag_key(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("tag", _binary(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=f"fk_{table}_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repository_id", "tag", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "replication_configurations",
        *_registry_key(),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("registry_id", "region", name="pk_replication_configurations"),
    )
    op.create_table(
        "image_replications",
        *_manifest_key("image_replications"),
        sa.Column("destination_region", sa.String(32), nullable=False),
        sa.Column("destination_registry_id", sa.String(12), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_code", sa.String(64), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint(
            "repository_id",
            "digest",
            "destination_region",
            "destination_registry_id",
            name="pk_image_replications",
        ),
    )
    op.create_table(
        "replicated_tags",
        *_repository_tag_key("replicated_tags"),
        sa.Column("pushed_at", _timestamp(), nullable=False),
    )
    op.create_table(
        "pull_through_cache_rules",
        *_registry_key(),
        sa.Column("prefix", _binary(256), nullable=False),
        sa.Column("upstream_registry_url", sa.String(2048), nullable=False),
        sa.Column("upstream_registry", sa.String(64), nullable=True),
        sa.Column("upstream_repository_prefix", _binary(256), nullable=False),
        sa.Column("credential_arn", sa.String(2048), nullable=True),
        sa.Column("custom_role_arn", sa.String(2048), nullable=True),
        sa.Column("upstream_role_arn", sa.String(2048), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint(
            "registry_id", "region", "prefix", name="pk_pull_through_cache_rules"
        ),
    )
    op.create_table(
        "repository_creation_templates",
        *_registry_key(),
        sa.Column("prefix", _binary(256), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint(
            "registry_id", "region", "prefix", name="pk_repository_creation_templates"
        ),
    )
    op.create_table(
        "upstream_tags",
        *_repository_tag_key("upstream_tags"),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("checked_at", _timestamp(), nullable=False),
    )
    op.create_table(
        "upstream_images",
        *_manifest_key("upstream_images"),
        sa.Column("upstream_registry_url", sa.String(2048), nullable=False),
        sa.Column("upstream_repository", _binary(256), nullable=False),
        sa.Column("imported_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_upstream_images"),
    )


def downgrade() -> None:
    for table in (
        "upstream_images",
        "upstream_tags",
        "repository_creation_templates",
        "pull_through_cache_rules",
        "replicated_tags",
        "image_replications",
        "replication_configurations",
    ):
        op.drop_table(table)
