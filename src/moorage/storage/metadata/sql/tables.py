"""The whole metadata schema, for SQLite and PostgreSQL (SQLAlchemy Core).

Migrations (``storage/metadata/migrations/versions``) create exactly this; a test compares
the migrated database with ``metadata`` so that the two never drift.

::

    repositories           id PK; (registry_id, region, name) unique; its settings (tag
     │                      mutability, scan on push, encryption) are columns
     ├── repository_tags    (repository_id, key) PK: resource tags (ECR TagResource)
     ├── repository_policies  repository_id PK: at most one policy per repository
     ├── lifecycle_policies, lifecycle_previews  repository_id PK (see "lifecycle policies")
     ├── replicated_tags    (repository_id, tag) PK (see "replication")
     ├── upstream_tags      (repository_id, tag) PK (see "pull-through cache")
     ├── blob_links         (repository_id, digest) PK; digest -> blobs
     ├── manifests          (repository_id, digest) PK; payload = the exact bytes received
     │    ├── image_replications  (repository_id, digest, destination) PK (see "replication")
     │    ├── upstream_images  (repository_id, digest) PK (see "pull-through cache")
     │    ├── manifest_references  (repository_id, manifest_digest, kind, child_digest) PK
     │    └── tags          (repository_id, name) PK; (repository_id, manifest_digest) -> manifests
     └── upload_sessions    id PK
    blobs                  digest PK (registry-wide: the BlobStore holds one copy per digest);
                           last_used_at drives garbage collection's grace period
    registry_policies      (registry_id, region) PK (one registry policy per registry)
    account_settings       (registry_id, region, name) PK; a row only once the setting is put
    registry_scanning_configurations  (registry_id, region) PK; a row only once one is put
    replication_configurations  (registry_id, region) PK (see "replication")
    replication_backfills  id PK; its results (see "replication backfills")
    pull_through_cache_rules, repository_creation_templates  (registry_id, region, prefix) PK
    public_registries      registry_id PK; alias unique (see "ECR Public")
    public_catalog_data    repository_id PK -> repositories (a public repository's)
    secrets                id PK; (registry_id, region, name) unique (see "Secrets Manager")
     ├── secret_versions   (secret_id, version_id) PK; the value encrypted, never clear text
     └── secret_tags       (secret_id, key) PK
    accounts               registry_id PK: an account and its registry are one
     └── iam_users          user_id PK (AIDA...); (registry_id, name) unique
          ├── access_keys   access_key_id PK (AKIA...); user_id -> iam_users; the secret
          │                 is AES-GCM ciphertext (iam/secrets.py), never clear text
          └── user_policies  (user_id, name) PK; document = the JSON text received

Regions. On AWS every (account, region) is a registry of its own, so what belongs to a
registry is keyed by ``(registry_id, region)``: repositories (and through their ids all they
own: images, tags, policies, scans, lifecycle policies), the registry policy, account
settings, the registry scanning configuration and the lifecycle audit trail carry a
``region`` column. A replication destination ``(region, registryId)`` names such a key.
Identities (accounts, users, keys, their policies) are global, as IAM is; blobs are
content-addressed and shared by every region, as is garbage collection over them; jobs are
one queue. Migration 0012 gave existing rows the deployment's configured region. The
store (``store.py``) acts in one region at a time: ``SqlMetadataStore.in_region``.

Every arrow is a foreign key with ``ON DELETE CASCADE``: deleting a repository deletes
everything it owns; deleting a manifest deletes its tags and the references it makes (not
the references other manifests make to it); deleting a blob deletes its links.
Repositories name their registry without a foreign key to ``accounts``: a registry serves
anonymous or emulator callers before any account is recorded, and deleting an account's
identities must not delete its images.

``manifest_references`` lists what each manifest points at: its config and layers
(kind ``blob``) and, for an index, its child manifests (kind ``manifest``). It has no foreign
key to ``blobs``, since a child is a manifest and since garbage collection needs to see
dangling references. The index on ``(child_digest, repository_id)`` answers both "which
indexes list this manifest?" and "is this blob referenced anywhere?" in one lookup.

Conventions:

- digests are text, ``algorithm:hex``;
- names, tags and digests compare and sort bytewise: SQLite's default ``BINARY`` collation,
  and ``COLLATE "C"`` on PostgreSQL (whose database default may be a linguistic order);
- lists of strings are JSON arrays (``mutability_exclusion_filters``);
- policy documents are stored as the exact text received;
- timestamps are timezone-aware UTC (``UtcDateTime``): ``timestamptz`` on PostgreSQL, and
  on SQLite ISO text without offset that is read back as UTC;
- ``repositories`` uses ``AUTOINCREMENT`` on SQLite so that the id of a deleted repository
  is never given to a new one (a late task holding the old id must not touch the new one).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeEngine

# Bounds from the specs: ECR repository names are at most 256 characters, OCI tags 128;
# media types are two RFC 6838 names of at most 127 characters.
NAME_LENGTH = 256
TAG_LENGTH = 128
DIGEST_LENGTH = 255
MEDIA_TYPE_LENGTH = 255
REGISTRY_ID_LENGTH = 12
# AWS's longest region names (us-gov-west-1, ap-southeast-7, eusc-de-east-1) are 15 or so.
REGION_LENGTH = 32
UPLOAD_ID_LENGTH = 128
# ECR's model: KmsKey is at most 2,048 characters, resource tag keys 128 and values 256,
# AccountSettingName 64 (values are short enum words).
KMS_KEY_LENGTH = 2048
RESOURCE_TAG_KEY_LENGTH = 128
RESOURCE_TAG_VALUE_LENGTH = 256
SETTING_LENGTH = 64


def binary_string(length: int) -> TypeEngine[str]:
    """A string that compares and sorts bytewise on both dialects."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored and returned in UTC.

    Naive datetimes are refused with ValueError (which SQLAlchemy wraps in StatementError):
    their meaning would depend on the host's time zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware one")
        # SQLite keeps no offset: convert first so that stored text compares as instants.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _repository_fk() -> Column[int]:
    return Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    )


repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("name", binary_string(NAME_LENGTH), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Server defaults: rows written before these columns existed read as ECR's defaults.
    Column("image_tag_mutability", String(32), nullable=False, server_default="MUTABLE"),
    Column("mutability_exclusion_filters", JSON, nullable=False, server_default=text("'[]'")),
    Column("scan_on_push", Boolean, nullable=False, server_default=false()),
    Column("encryption_type", String(16), nullable=False, server_default="AES256"),
    Column("kms_key", String(KMS_KEY_LENGTH), nullable=True),
    Column("region", String(REGION_LENGTH), nullable=False),
    UniqueConstraint("registry_id", "region", "name"),
    sqlite_autoincrement=True,
)

repository_tags = Table(
    "repository_tags",
    metadata,
    _repository_fk(),
    Column("key", binary_string(RESOURCE_TAG_KEY_LENGTH), nullable=False),
    Column("value", String(RESOURCE_TAG_VALUE_LENGTH), nullable=False),
    PrimaryKeyConstraint("repository_id", "key"),
)

repository_policies = Table(
    "repository_policies",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("policy_text", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

registry_policies = Table(
    "registry_policies",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("policy_text", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("registry_id", "region"),
)

account_settings = Table(
    "account_settings",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("name", String(SETTING_LENGTH), nullable=False),
    Column("value", String(SETTING_LENGTH), nullable=False),
    PrimaryKeyConstraint("registry_id", "region", "name"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", binary_string(DIGEST_LENGTH), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The last upload, mount or link of the blob, or deletion of a manifest referencing it:
    # garbage collection spares an unreferenced blob for a grace period after it (docs/gc.md).
    Column("last_used_at", UtcDateTime, nullable=False),
)

blob_links = Table(
    "blob_links",
    metadata,
    _repository_fk(),
    Column(
        "digest",
        binary_string(DIGEST_LENGTH),
        ForeignKey("blobs.digest", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("repository_id", "digest"),
    # delete_blob cascades by digest alone; garbage collection looks blobs up the same way.
    Index(None, "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    _repository_fk(),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("media_type", String(MEDIA_TYPE_LENGTH), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("artifact_type", String(MEDIA_TYPE_LENGTH), nullable=True),
    Column("config_media_type", String(MEDIA_TYPE_LENGTH), nullable=True),
    Column("subject", binary_string(DIGEST_LENGTH), nullable=True),
    Column("annotations", JSON, nullable=False),
    Column("pushed_at", UtcDateTime, nullable=False),
    Column("last_pulled_at", UtcDateTime, nullable=True),
    # Manifest GETs, counted in memory and added in batches (services/images.py).
    Column("pull_count", BigInteger, nullable=False, server_default="0"),
    PrimaryKeyConstraint("repository_id", "digest"),
    # The referrers API lists manifests by subject.
    Index(None, "repository_id", "subject"),
)

manifest_references = Table(
    "manifest_references",
    metadata,
    Column("repository_id", Integer, nullable=False),
    Column("manifest_digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("kind", String(16), nullable=False),  # ReferenceKind: "blob" | "manifest"
    Column("child_digest", binary_string(DIGEST_LENGTH), nullable=False),
    # The size the manifest gives a blob (NULL before migration 0011, and for children):
    # the image size of a fixture image (emulator mode) whose blobs were never uploaded.
    Column("declared_size", BigInteger, nullable=True),
    PrimaryKeyConstraint("repository_id", "manifest_digest", "kind", "child_digest"),
    # Through the manifest, so that deleting the repository or the manifest removes these.
    ForeignKeyConstraint(
        ["repository_id", "manifest_digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
    # Who references a digest. Covering, with child_digest first: SQLite without statistics
    # then prefers it to the primary key (repository_id alone) for lookups by child.
    Index(
        "ix_manifest_references_by_child",
        "child_digest",
        "repository_id",
        "kind",
        "manifest_digest",
    ),
)


tags = Table(
    "tags",
    metadata,
    Column("repository_id", Integer, nullable=False),
    Column("name", binary_string(TAG_LENGTH), nullable=False),
    Column("manifest_digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("repository_id", "name"),
    ForeignKeyConstraint(
        ["repository_id", "manifest_digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
    # tags_of, and the cascade from a deleted manifest.
    Index(None, "repository_id", "manifest_digest"),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(UPLOAD_ID_LENGTH), primary_key=True),
    _repository_fk(),
    Column("size", BigInteger, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The cascade from a deleted repository.
    Index(None, "repository_id"),
    # Garbage collection of abandoned uploads.
    Index(None, "updated_at"),
)


# -- identities ------------------------------------------------------------------------------

# IAM's bounds: user names 64 characters, policy names 128, paths 512; our ids are 21
# (AIDA + 17) and 20 (AKIA + 16) characters, and AWS allows ids up to 128.
IAM_ID_LENGTH = 128
USER_NAME_LENGTH = 64
USER_PATH_LENGTH = 512
POLICY_NAME_LENGTH = 128
ACCOUNT_NAME_LENGTH = 50
ACCESS_KEY_STATUS_LENGTH = 16

accounts = Table(
    "accounts",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), primary_key=True),
    Column("name", String(ACCOUNT_NAME_LENGTH), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

iam_users = Table(
    "iam_users",
    metadata,
    Column("user_id", String(IAM_ID_LENGTH), primary_key=True),
    Column(
        "registry_id",
        String(REGISTRY_ID_LENGTH),
        ForeignKey("accounts.registry_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", binary_string(USER_NAME_LENGTH), nullable=False),
    Column("path", String(USER_PATH_LENGTH), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # Also the index the cascade from a deleted account uses (registry_id leads).
    UniqueConstraint("registry_id", "name"),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key_id", String(IAM_ID_LENGTH), primary_key=True),
    Column(
        "user_id",
        String(IAM_ID_LENGTH),
        ForeignKey("iam_users.user_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("secret_ciphertext", LargeBinary, nullable=False),
    Column("status", String(ACCESS_KEY_STATUS_LENGTH), nullable=False),  # "Active" | "Inactive"
    Column("created_at", UtcDateTime, nullable=False),
    # list_access_keys, and the cascade from a deleted user.
    Index(None, "user_id"),
)

user_policies = Table(
    "user_policies",
    metadata,
    Column(
        "user_id",
        String(IAM_ID_LENGTH),
        ForeignKey("iam_users.user_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", binary_string(POLICY_NAME_LENGTH), nullable=False),
    Column("document", Text, nullable=False),
    PrimaryKeyConstraint("user_id", "name"),
)


# -- background jobs -------------------------------------------------------------------------
#
#   jobs             id PK; the durable queue (domain/jobs.py has the states); a dedupe_key is
#                    unique among pending jobs only (a partial unique index), so a finished
#                    job's key may be used again
#   job_schedules    name PK; a periodic job, enqueued when next_run_at passes
#
# Claims look for due jobs by (state, run_after), the index below.

JOB_KIND_LENGTH = 128
JOB_DEDUPE_KEY_LENGTH = 255
JOB_STATE_LENGTH = 16
JOB_LEASE_OWNER_LENGTH = 255
JOB_SCHEDULE_NAME_LENGTH = 128
# Partial index predicate, in SQL both dialects read the same way (JobState's pending values).
JOBS_PENDING = "state IN ('queued', 'running', 'failed')"

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(JOB_KIND_LENGTH), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("dedupe_key", binary_string(JOB_DEDUPE_KEY_LENGTH), nullable=True),
    Column("state", String(JOB_STATE_LENGTH), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", UtcDateTime, nullable=False),
    Column("lease_owner", String(JOB_LEASE_OWNER_LENGTH), nullable=True),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("progress", JSON, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index(
        None,
        "dedupe_key",
        unique=True,
        sqlite_where=text(JOBS_PENDING),
        postgresql_where=text(JOBS_PENDING),
    ),
    Index(None, "state", "run_after"),
    # Ids are never reused: a late worker holding an old id must not touch a new job.
    sqlite_autoincrement=True,
)

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("name", binary_string(JOB_SCHEDULE_NAME_LENGTH), primary_key=True),
    Column("kind", String(JOB_KIND_LENGTH), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("interval_seconds", Integer, nullable=False),
    Column("next_run_at", UtcDateTime, nullable=False),
)


# -- lifecycle policies ----------------------------------------------------------------------
#
#   lifecycle_policies         repository_id PK -> repositories: at most one policy each, with
#                              when it was set and when a run last evaluated it
#   lifecycle_previews         repository_id PK -> repositories: the current preview (a new one
#    │                         replaces it); status IN_PROGRESS | COMPLETE | FAILED | EXPIRED
#    └── lifecycle_preview_results  (repository_id, digest) PK: one row per image the preview
#                              acts on (rule, action, the image's tags and push time then)
#   lifecycle_runs             id PK: the audit trail of runs, kept after the repository goes
#    └── lifecycle_run_images  (run_id, digest) PK: what the run expired (or, dry, would have)
#
# Preview results are rows, not one document: GetLifecyclePolicyPreview pages through them by
# digest and filters them by tag status, and a repository may have 100,000 images.

LIFECYCLE_STATUS_LENGTH = 16
LIFECYCLE_ACTION_LENGTH = 16

lifecycle_policies = Table(
    "lifecycle_policies",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("policy_text", Text, nullable=False),
    Column("set_at", UtcDateTime, nullable=False),
    Column("last_evaluated_at", UtcDateTime, nullable=True),
)

lifecycle_previews = Table(
    "lifecycle_previews",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("policy_text", Text, nullable=False),
    Column("status", String(LIFECYCLE_STATUS_LENGTH), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
)

lifecycle_preview_results = Table(
    "lifecycle_preview_results",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("lifecycle_previews.repository_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("tags", JSON, nullable=False),  # the image's tags when the preview ran, sorted
    Column("tagged", Boolean, nullable=False),  # for the tagStatus filter
    Column("pushed_at", UtcDateTime, nullable=False),
    Column("rule_priority", Integer, nullable=False),
    Column("action", String(LIFECYCLE_ACTION_LENGTH), nullable=False),  # "expire" | "transition"
    Column("target_storage_class", String(LIFECYCLE_ACTION_LENGTH), nullable=True),
    PrimaryKeyConstraint("repository_id", "digest"),
)

lifecycle_runs = Table(
    "lifecycle_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # By name, without a foreign key: the trail outlives the repository.
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("repository_name", binary_string(NAME_LENGTH), nullable=False),
    Column("policy_text", Text, nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Index(None, "registry_id", "region", "repository_name"),
    sqlite_autoincrement=True,
)

lifecycle_run_images = Table(
    "lifecycle_run_images",
    metadata,
    Column(
        "run_id",
        Integer,
        ForeignKey("lifecycle_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("rule_priority", Integer, nullable=False),
    Column("action", String(LIFECYCLE_ACTION_LENGTH), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    # False when the image was not deleted: a dry run, or it changed since the evaluation
    # (an index lists it now, or it is gone already).
    Column("deleted", Boolean, nullable=False),
    PrimaryKeyConstraint("run_id", "digest"),
)


# -- registry scanning configuration -------------------------------------------------------
#
#   registry_scanning_configurations  registry_id PK: the registry's scan type and its rules
#                                     (ECR's camelCase JSON, at most 2 rules of 100 filters);
#                                     no row means the default, BASIC without rules
#
# The rules are one document: they are read whole and never queried into.

registry_scanning_configurations = Table(
    "registry_scanning_configurations",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("scan_type", String(SETTING_LENGTH), nullable=False),
    Column("rules", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("registry_id", "region"),
)

# -- replication (services/replication.py) ------------------------------------------------
#   replication_configurations  (registry_id, region) PK: the registry's rules, one document
#                          (domain/replication.py's; read whole, never queried into)
#   image_replications     (repository_id, digest, destination_region, destination_registry_id)
#                          PK: a source image's copy to one destination (region, registryId),
#                          IN_PROGRESS, COMPLETE or FAILED; goes with the source manifest
#   replicated_tags        (repository_id, tag) PK: in a repository replication writes to, the
#                          source's push time of the event that last set the tag, so that a late
#                          copy of an older push never moves the tag back; goes with the repository

REPLICATION_STATUS_LENGTH = 16
FAILURE_CODE_LENGTH = 64

replication_configurations = Table(
    "replication_configurations",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("rules", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("registry_id", "region"),
)

image_replications = Table(
    "image_replications",
    metadata,
    Column("repository_id", Integer, nullable=False),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("destination_region", String(REGION_LENGTH), nullable=False),
    Column("destination_registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("status", String(REPLICATION_STATUS_LENGTH), nullable=False),
    Column("failure_code", String(FAILURE_CODE_LENGTH), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint(
        "repository_id", "digest", "destination_region", "destination_registry_id"
    ),
    ForeignKeyConstraint(
        ["repository_id", "digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
)

replicated_tags = Table(
    "replicated_tags",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tag", binary_string(TAG_LENGTH), nullable=False),
    Column("pushed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("repository_id", "tag"),
)


# -- replication backfills (services/replication.py) ---------------------------------------
#   replication_backfills  id PK (a UUID): one StartReplicationBackfill of a registry to one
#    │                     destination, its status, counts and the failure codes seen
#    └── backfill_results  (backfill_id, seq) PK: one per image (and tag) copied

replication_backfills = Table(
    "replication_backfills",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("destination_region", String(REGION_LENGTH), nullable=False),
    Column("destination_registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("status", String(REPLICATION_STATUS_LENGTH), nullable=False),
    Column("failure_code", String(FAILURE_CODE_LENGTH), nullable=True),
    Column("total", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("failure_codes", JSON, nullable=False),
    Column("stop_requested", Boolean, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Index(None, "registry_id", "region", "started_at"),
)

backfill_results = Table(
    "backfill_results",
    metadata,
    Column(
        "backfill_id",
        String(36),
        ForeignKey("replication_backfills.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", Integer, nullable=False),
    Column("repository_name", binary_string(NAME_LENGTH), nullable=False),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("tag", binary_string(TAG_LENGTH), nullable=True),
    Column("status", String(REPLICATION_STATUS_LENGTH), nullable=False),
    Column("failure_code", String(FAILURE_CODE_LENGTH), nullable=True),
    PrimaryKeyConstraint("backfill_id", "seq"),
)


# -- pull-through cache and repository creation templates -----------------------------------
#   pull_through_cache_rules  (registry_id, region, prefix) PK: a repository prefix (without its
#                          trailing '/', or ROOT) and the upstream it caches
#   repository_creation_templates  (registry_id, region, prefix) PK: the settings a repository
#                          created by replication, a cache or a push gets; one JSON document
#   upstream_tags          (repository_id, tag) PK: a cached tag, the digest it had upstream
#                          and when it was last checked there (revalidation)
#   upstream_images        (repository_id, digest) PK: where a cached image came from; goes
#                          with its manifest

PREFIX_LENGTH = 256
URL_LENGTH = 2048
ARN_LENGTH = 2048

pull_through_cache_rules = Table(
    "pull_through_cache_rules",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("prefix", binary_string(PREFIX_LENGTH), nullable=False),
    Column("upstream_registry_url", String(URL_LENGTH), nullable=False),
    Column("upstream_registry", String(SETTING_LENGTH), nullable=True),
    Column("upstream_repository_prefix", binary_string(PREFIX_LENGTH), nullable=False),
    Column("credential_arn", String(ARN_LENGTH), nullable=True),
    Column("custom_role_arn", String(ARN_LENGTH), nullable=True),
    Column("upstream_role_arn", String(ARN_LENGTH), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("registry_id", "region", "prefix"),
)

repository_creation_templates = Table(
    "repository_creation_templates",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("prefix", binary_string(PREFIX_LENGTH), nullable=False),
    Column("document", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("registry_id", "region", "prefix"),
)

upstream_tags = Table(
    "upstream_tags",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("tag", binary_string(TAG_LENGTH), nullable=False),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("checked_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("repository_id", "tag"),
)

upstream_images = Table(
    "upstream_images",
    metadata,
    Column("repository_id", Integer, nullable=False),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("upstream_registry_url", String(URL_LENGTH), nullable=False),
    Column("upstream_repository", binary_string(NAME_LENGTH), nullable=False),
    Column("imported_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("repository_id", "digest"),
    ForeignKeyConstraint(
        ["repository_id", "digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
)


# -- Secrets Manager (services/secrets.py) -------------------------------------------------
#   secrets                id PK; (registry_id, region, name) unique; arn unique; deleted_at:
#    │                     the date a scheduled deletion takes effect (NULL: not scheduled)
#    ├── secret_versions   (secret_id, version_id) PK; the value as AES-GCM ciphertext
#    │                     (iam/secrets.py, bound to the ARN and version), never clear text;
#    │                     stages: the JSON list of its staging labels (AWSCURRENT, ...)
#    └── secret_tags       (secret_id, key) PK

SECRET_NAME_LENGTH = 512
SECRET_VERSION_LENGTH = 64

secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("registry_id", String(REGISTRY_ID_LENGTH), nullable=False),
    Column("region", String(REGION_LENGTH), nullable=False),
    Column("name", binary_string(SECRET_NAME_LENGTH), nullable=False),
    Column("arn", binary_string(ARN_LENGTH), nullable=False),
    Column("description", Text, nullable=True),
    Column("kms_key_id", String(ARN_LENGTH), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("accessed_at", UtcDateTime, nullable=True),
    Column("deleted_at", UtcDateTime, nullable=True),
    UniqueConstraint("registry_id", "region", "name"),
    UniqueConstraint("arn"),
    sqlite_autoincrement=True,
)

secret_versions = Table(
    "secret_versions",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), nullable=False),
    Column("version_id", String(SECRET_VERSION_LENGTH), nullable=False),
    Column("binary", Boolean, nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("stages", JSON, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("secret_id", "version_id"),
)

secret_tags = Table(
    "secret_tags",
    metadata,
    Column("secret_id", Integer, ForeignKey("secrets.id", ondelete="CASCADE"), nullable=False),
    Column("key", binary_string(128), nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("secret_id", "key"),
)


# -- image scans -----------------------------------------------------------------------
#   image_scans             (repository_id, digest) PK: the latest scan of an image, with its
#    │                      findings as one JSON document (read whole, never queried into)
#    └── image_scan_packages  (repository_id, digest, ecosystem, name) PK: the packages the scan
#                           found, by advisory key: which images new advisories concern
#
# Both go with their manifest (cascade), so a deleted image forgets its scan.

SCAN_STATUS_LENGTH = 32
SCAN_TYPE_LENGTH = 16
# As advisory_packages' columns: the scanned packages are looked up by the same keys.
ECOSYSTEM_LENGTH = 128
PACKAGE_NAME_LENGTH = 1024

image_scans = Table(
    "image_scans",
    metadata,
    Column("repository_id", Integer, nullable=False),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("scan_type", String(SCAN_TYPE_LENGTH), nullable=False),
    Column("status", String(SCAN_STATUS_LENGTH), nullable=False),
    Column("description", Text, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Column("advisories_updated_at", UtcDateTime, nullable=True),
    Column("severity_counts", JSON, nullable=False),
    Column("findings", JSON, nullable=False),
    Column("sbom_digest", binary_string(DIGEST_LENGTH), nullable=True),
    PrimaryKeyConstraint("repository_id", "digest"),
    ForeignKeyConstraint(
        ["repository_id", "digest"],
        ["manifests.repository_id", "manifests.digest"],
        ondelete="CASCADE",
    ),
)

image_scan_packages = Table(
    "image_scan_packages",
    metadata,
    Column("repository_id", Integer, nullable=False),
    Column("digest", binary_string(DIGEST_LENGTH), nullable=False),
    Column("ecosystem", binary_string(ECOSYSTEM_LENGTH), nullable=False),
    Column("name", binary_string(PACKAGE_NAME_LENGTH), nullable=False),
    PrimaryKeyConstraint("repository_id", "digest", "ecosystem", "name"),
    ForeignKeyConstraint(
        ["repository_id", "digest"],
        ["image_scans.repository_id", "image_scans.digest"],
        ondelete="CASCADE",
    ),
    # images_with_packages: which scanned images have a package new advisories name.
    Index(None, "ecosystem", "name"),
)


# -- the advisory database (ports/advisories.py) ------------------------------------------------
#
#   advisory_imports     id PK: one per file imported (source = the file's name, location = its
#                        absolute path), started, then finished with its counts
#   advisories           id PK; (source, advisory_id) unique: one record per source and id, the
#    │                   Advisory in the compact JSON of scanning/advisories/codec.py; written_at
#    │                   moves only when the record changes (continuous scanning asks by it)
#    └── advisory_packages  (ecosystem, name, advisory_id) PK: the package_key of every affected
#                        package, so that a scan finds its ~150 packages' advisories by index
#
# Not account data: no registry id, and the emulator's reset keeps these tables (store.py).
# Lookups never read JSON inside the database: the document is one opaque text per record.

# The port's bounds (ports/advisories.py), which importers check before writing.
ADVISORY_SOURCE_LENGTH = 255
ADVISORY_ID_LENGTH = 255
ADVISORY_ECOSYSTEM_LENGTH = 128
ADVISORY_PACKAGE_NAME_LENGTH = 1024

advisory_imports = Table(
    "advisory_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", binary_string(ADVISORY_SOURCE_LENGTH), nullable=False),
    Column("location", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("records", Integer, nullable=True),
    Column("errors", Integer, nullable=True),
    Index(None, "source"),
    sqlite_autoincrement=True,
)

advisories = Table(
    "advisories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", binary_string(ADVISORY_SOURCE_LENGTH), nullable=False),
    Column("advisory_id", binary_string(ADVISORY_ID_LENGTH), nullable=False),
    Column("modified", UtcDateTime, nullable=True),
    Column("written_at", UtcDateTime, nullable=False),
    Column("document", Text, nullable=False),
    UniqueConstraint("source", "advisory_id"),
    Index(None, "written_at"),
)

advisory_packages = Table(
    "advisory_packages",
    metadata,
    Column("ecosystem", binary_string(ADVISORY_ECOSYSTEM_LENGTH), nullable=False),
    Column("name", binary_string(ADVISORY_PACKAGE_NAME_LENGTH), nullable=False),
    Column(
        "advisory_id",
        Integer,
        ForeignKey("advisories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    PrimaryKeyConstraint("ecosystem", "name", "advisory_id"),
    # Replacing or deleting an advisory finds its rows (and PostgreSQL's cascade needs it).
    Index(None, "advisory_id"),
)


# -- ECR Public -------------------------------------------------------------------------------
# Public repositories are rows of ``repositories`` in the namespace ``region = 'public'``
# (domain/public.py says why), with all that they own; these tables add what only ECR
# Public has:
#   public_registries      registry_id PK: the account's public registry, made with its first
#                          public repository; alias unique across the deployment (it is the
#                          first segment of every public image address); display name,
#                          description and logo (PutRegistryCatalogData)
#   public_catalog_data    repository_id PK: a public repository's catalog data; the lists
#                          are JSON arrays, the logo a PNG's bytes
ALIAS_LENGTH = 50

public_registries = Table(
    "public_registries",
    metadata,
    Column("registry_id", String(REGISTRY_ID_LENGTH), primary_key=True),
    Column("alias", binary_string(ALIAS_LENGTH), nullable=False),
    Column("display_name", String(100), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("logo", LargeBinary, nullable=True),
    Column("verified", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("alias"),
)

public_catalog_data = Table(
    "public_catalog_data",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("description", Text, nullable=False, server_default=""),
    Column("architectures", JSON, nullable=False),
    Column("operating_systems", JSON, nullable=False),
    Column("categories", JSON, nullable=False),
    Column("about_text", Text, nullable=False, server_default=""),
    Column("usage_text", Text, nullable=False, server_default=""),
    Column("logo", LargeBinary, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)
