"""The initial metadata schema: repositories, blobs, manifests, tags and upload sessions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full rather than imported from sql/tables.py: a migration must keep
creating what it created, whatever tables.py becomes. The module docstring of tables.py
explains the schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _binary(length: int) -> sa.types.TypeEngine[str]:
    # Bytewise comparison and order: SQLite's default BINARY, "C" on PostgreSQL.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _repository_id() -> sa.Column[int]:
    return sa.Column("repository_id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("registry_id", sa.String(12), nullable=False),
        sa.Column("name", _binary(256), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_repositories"),
        sa.UniqueConstraint("registry_id", "name", name="uq_repositories_registry_id_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "blobs",
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_blobs"),
    )
    op.create_table(
        "blob_links",
        _repository_id(),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_blob_links"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_blob_links_repository_id_repositories",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["digest"], ["blobs.digest"], name="fk_blob_links_digest_blobs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_blob_links_digest", "blob_links", ["digest"])
    op.create_table(
        "manifests",
        _repository_id(),
        sa.Column("digest", _binary(255), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("artifact_type", sa.String(255), nullable=True),
        sa.Column("config_media_type", sa.String(255), nullable=True),
        sa.Column("subject", _binary(255), nullable=True),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("pushed_at", _timestamp(), nullable=False),
        sa.Column("last_pulled_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("repository_id", "digest", name="pk_manifests"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_manifests_repository_id_repositories",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_manifests_repository_id_subject", "manifests", ["repository_id", "subject"])
    op.create_table(
        "manifest_references",
        _repository_id(),
        sa.Column("manifest_digest", _binary(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("child_digest", _binary(255), nullable=False),
        sa.PrimaryKeyConstraint(
            "repository_id",
            "manifest_digest",
            "kind",
            "child_digest",
            name="pk_manifest_references",
        ),
        sa.ForeignKeyConstraint(
            ["repository_id", "manifest_digest"],
            ["manifests.repository_id", "manifests.digest"],
            name="fk_manifest_references_repository_id_manifests",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_manifest_references_child_digest_repository_id",
        "manifest_references",
        ["child_digest", "repository_id"],
    )
    op.create_table(
        "tags",
        _repository_id(),
        sa.Column("name", _binary(128), nullable=False),
        sa.Column("manifest_digest", _binary(255), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("repository_id", "name", name="pk_tags"),
        sa.ForeignKeyConstraint(
            ["repository_id", "manifest_digest"],
            ["manifests.repository_id", "manifests.digest"],
            name="fk_tags_repository_id_manifests",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_tags_repository_id_manifest_digest", "tags", ["repository_id", "manifest_digest"]
    )
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(128), nullable=False),
        _repository_id(),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upload_sessions"),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name="fk_upload_sessions_repository_id_repositories",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_upload_sessions_repository_id", "upload_sessions", ["repository_id"])
    op.create_index("ix_upload_sessions_updated_at", "upload_sessions", ["updated_at"])


def downgrade() -> None:
    for table in (
        "upload_sessions",
        "tags",
        "manifest_references",
        "manifests",
        "blob_links",
        "blobs",
        "repositories",
    ):
        op.drop_table(table)
