"""Secrets, as AWS Secrets Manager keeps them: named, versioned, staged, tagged, deleted with
a recovery window.

The model (Secrets Manager user guide, "What's in a secret" and the API reference)::

    secret   name (1-512 of [A-Za-z0-9/_+=.@-]), ARN arn:aws:secretsmanager:<region>:<account>:
     │       secret:<name>-<6 random characters>, description, tags, KmsKeyId (stored, echoed)
     └── versions   id (ClientRequestToken, else a UUID), a string or a binary value, staging
                    labels: AWSCURRENT on the newest, AWSPREVIOUS on the one before

- A ``SecretId`` is the name or the ARN (also without its random suffix).
- PutSecretValue adds a version; AWSCURRENT moves to it (unless other labels are asked for)
  and the version that had AWSCURRENT gets AWSPREVIOUS. The same ClientRequestToken with the
  same value again is the same call (idempotent); with another value, ResourceExists. Versions
  without a label are dropped past ``MAX_UNLABELLED_VERSIONS``.
- DeleteSecret schedules the deletion ``RecoveryWindowInDays`` (7-30, default 30) ahead, or
  at once with ``ForceDeleteWithoutRecovery``; until then the secret is listed only with
  ``IncludePlannedDeletion``, answers InvalidRequest to reads and writes of its value, and
  RestoreSecret cancels the deletion. A secret past its date is forgotten when next looked at.

Values are encrypted at rest with the server's key hierarchy (``iam/secrets.py``, purpose
``secret-value``), each bound to its secret's ARN and version id: a value copied onto another
row does not decrypt. They never reach a log, an exception message or a repr. The KmsKeyId a
caller names is kept and answered, not used (TODO(#14): KMS).
"""

from __future__ import annotations

import json
import re
import secrets as random
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from moorage.clients.oci import BasicCredentials
from moorage.domain.errors import (
    InvalidParameter,
    SecretExists,
    SecretLimitExceeded,
    SecretNotFound,
    SecretRequestInvalid,
    UnableToAccessSecret,
)
from moorage.iam.actions import PARTITION
from moorage.iam.secrets import SecretCipher, SecretUndecryptable
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore, MetadataTransaction
from moorage.ports.secrets import SecretRecord, SecretVersion

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
DEFAULT_RECOVERY_DAYS = 30
MIN_RECOVERY_DAYS, MAX_RECOVERY_DAYS = 7, 30
MAX_TAGS = 50
MAX_UNLABELLED_VERSIONS = 100
# Our bound per account and region (AWS's quota is 500,000): every ListSecrets reads them all.
MAX_SECRETS = 10_000
_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}")
_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):([0-9]{12}):secret:(.+)")
_SUFFIX_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class SecretValue:
    """A string or a binary value, never both. Its repr tells nothing."""

    text: str | None = field(default=None, repr=False)
    binary: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.text is None) == (self.binary is None):
            raise InvalidParameter(
                "You must provide either SecretString or SecretBinary, but not both."
            )


@dataclass(frozen=True, slots=True)
class StoredValue:
    secret: SecretRecord
    version_id: str
    stages: tuple[str, ...]
    created_at: datetime
    value: SecretValue


@dataclass(frozen=True, slots=True)
class SecretDescription:
    secret: SecretRecord
    tags: dict[str, str]
    versions: dict[str, tuple[str, ...]]  # version id -> labels (only labelled versions)


class SecretsService:
    """The secrets of one region (``metadata`` acts in ``region``)."""

    def __init__(
        self, metadata: MetadataStore, cipher: SecretCipher, clock: Clock, *, region: str
    ) -> None:
        self._metadata = metadata
        self._cipher = cipher
        self._clock = clock
        self._region = region

    # -- secrets --------------------------------------------------------------------------

    def arn_for(self, registry_id: str, name: str) -> str:
        """The ARN a secret of ``name`` would get, for authorizing its creation (the random
        suffix stands as ``-??????``, as AWS matches it)."""
        return f"arn:{PARTITION}:secretsmanager:{self._region}:{registry_id}:secret:{name}-??????"

    async def arn_of(self, registry_id: str, secret_id: str) -> str:
        """The ARN to authorize a call on ``secret_id`` with: the secret's own, else (none
        exists) the given ARN, or the one a secret of that name would have."""
        async with self._metadata.read() as tx:
            if _ARN.fullmatch(secret_id) is None:
                record = await tx.get_secret(registry_id, name=secret_id)
            else:
                record = await tx.get_secret(registry_id, arn=secret_id)
        if record is not None:
            return record.arn
        return secret_id if secret_id.startswith("arn:") else self.arn_for(registry_id, secret_id)

    async def create(
        self,
        registry_id: str,
        name: str,
        *,
        value: SecretValue | None,
        description: str | None = None,
        kms_key_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        client_token: str | None = None,
    ) -> StoredValue | SecretRecord:
        """A new secret, with a first version when ``value`` is given (then the stored value,
        else the record). Raises InvalidParameter (the name), SecretExists, SecretRequestInvalid
        (a secret of that name is scheduled for deletion), SecretLimitExceeded."""
        if not _NAME.fullmatch(name):
            raise InvalidParameter(
                "Invalid name. Must be a valid name containing alphanumeric characters, or any "
                "of the following: -/_+=.@!"
            )
        tags = dict(tags or {})
        _check_tags(tags)
        now = self._clock()
        suffix = "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(6))
        arn = f"arn:{PARTITION}:secretsmanager:{self._region}:{registry_id}:secret:{name}-{suffix}"
        async with self._metadata.transaction() as tx:
            existing = await self._lookup(tx, registry_id, name, now)
            if existing is not None:
                if existing.deleted_at is not None:
                    raise SecretRequestInvalid(
                        "You can't create this secret because a secret with this name is "
                        "already scheduled for deletion."
                    )
                raise SecretExists(
                    f"The operation failed because the secret {name} already exists."
                )
            if await tx.count_secrets(registry_id) >= MAX_SECRETS:
                raise SecretLimitExceeded(
                    f"This account has the most secrets it may have in {self._region} "
                    f"({MAX_SECRETS})."
                )
            record = await tx.create_secret(
                registry_id, name, arn, now, description=description, kms_key_id=kms_key_id
            )
            if record is None:
                raise SecretExists(
                    f"The operation failed because the secret {name} already exists."
                )
            if tags:
                await tx.put_secret_tags(record.id, tags)
            if value is None:
                return record
            version_id = client_token or str(uuid.uuid4())
            await self._add_version(tx, record, version_id, value, (CURRENT,), [], now)
        return StoredValue(record, version_id, (CURRENT,), now, value)

    async def describe(self, registry_id: str, secret_id: str) -> SecretDescription:
        """Raises SecretNotFound."""
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id)
            return await _description(tx, record)

    async def list_secrets(
        self,
        registry_id: str,
        *,
        include_planned_deletion: bool = False,
        filters: Sequence[tuple[str, Sequence[str]]] = (),
        sort_by: str = "created-date",
        descending: bool = True,
    ) -> list[SecretDescription]:
        """ListSecrets' secrets, filtered (each filter a key and the values, any of which
        may match: a prefix, or ``!prefix`` for none), then sorted."""
        now = self._clock()
        async with self._metadata.transaction() as tx:
            records = await tx.list_secrets(registry_id, MAX_SECRETS)
            found = []
            for record in records:
                if record.deleted_at is not None and record.deleted_at <= now:
                    await tx.delete_secret(record.id)
                    continue
                if record.deleted_at is not None and not include_planned_deletion:
                    continue
                description = await _description(tx, record)
                if all(_matches(description, key, values) for key, values in filters):
                    found.append(description)
        found.sort(key=lambda d: _sort_key(d, sort_by), reverse=descending)
        return found

    async def delete(
        self,
        registry_id: str,
        secret_id: str,
        *,
        recovery_window_days: int | None = None,
        force: bool = False,
    ) -> tuple[SecretRecord, datetime]:
        """Schedule the deletion (or delete at once with ``force``); the secret and the date
        its deletion takes effect. Raises SecretNotFound, InvalidParameter,
        SecretRequestInvalid (already scheduled)."""
        if force and recovery_window_days is not None:
            raise InvalidParameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        days = DEFAULT_RECOVERY_DAYS if recovery_window_days is None else recovery_window_days
        if not force and not MIN_RECOVERY_DAYS <= days <= MAX_RECOVERY_DAYS:
            raise InvalidParameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
            )
        now = self._clock()
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id)
            if force:
                await tx.delete_secret(record.id)
                return record, now
            if record.deleted_at is not None:
                raise _marked_for_deletion("it was already scheduled for deletion")
            when = now + timedelta(days=days)
            await tx.update_secret(record.id, deleted_at=when)
        return record, when

    async def restore(self, registry_id: str, secret_id: str) -> SecretRecord:
        """Cancel a scheduled deletion. Raises SecretNotFound."""
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id)
            await tx.update_secret(record.id, clear_deletion=True, changed_at=self._clock())
        return record

    async def tag(self, registry_id: str, secret_id: str, tags: Mapping[str, str]) -> None:
        """Raises SecretNotFound, SecretRequestInvalid (marked for deletion), InvalidParameter
        (past 50 tags)."""
        _check_tags(tags)
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id, usable=True)
            existing = await tx.secret_tags(record.id)
            if len({**existing, **tags}) > MAX_TAGS:
                raise InvalidParameter(f"A secret may have at most {MAX_TAGS} tags.")
            await tx.put_secret_tags(record.id, tags)
            await tx.update_secret(record.id, changed_at=self._clock())

    async def untag(self, registry_id: str, secret_id: str, keys: Sequence[str]) -> None:
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id, usable=True)
            await tx.delete_secret_tags(record.id, keys)
            await tx.update_secret(record.id, changed_at=self._clock())

    # -- values ---------------------------------------------------------------------------

    async def get_value(
        self,
        registry_id: str,
        secret_id: str,
        *,
        version_id: str | None = None,
        stage: str | None = None,
    ) -> StoredValue:
        """The version asked for (by id, by label; default AWSCURRENT), decrypted. Raises
        SecretNotFound (also for a version or label that has none), SecretRequestInvalid
        (marked for deletion), UnableToAccessSecret (a value this server cannot decrypt)."""
        now = self._clock()
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id, usable=True)
            versions = await tx.secret_versions(record.id)
            chosen = _choose(versions, version_id, stage)
            await tx.update_secret(record.id, accessed_at=_day(now))
        return StoredValue(
            record, chosen.version_id, chosen.stages, chosen.created_at, self._open(record, chosen)
        )

    async def put_value(
        self,
        registry_id: str,
        secret_id: str,
        value: SecretValue,
        *,
        client_token: str | None = None,
        stages: Sequence[str] | None = None,
    ) -> StoredValue:
        """A new version (see the module docstring for the labels). Raises SecretNotFound,
        SecretRequestInvalid, SecretExists (the token names a version with another value)."""
        now = self._clock()
        labels = tuple(dict.fromkeys(stages or (CURRENT,)))
        version_id = client_token or str(uuid.uuid4())
        async with self._metadata.transaction() as tx:
            record = await self._require(tx, registry_id, secret_id, usable=True)
            versions = await tx.secret_versions(record.id)
            same = next((v for v in versions if v.version_id == version_id), None)
            if same is not None:
                if self._open(record, same) != value:
                    raise SecretExists(
                        "You can't modify an existing version, you can only create a new version."
                    )
                return StoredValue(record, same.version_id, same.stages, same.created_at, value)
            await self._add_version(tx, record, version_id, value, labels, versions, now)
        return StoredValue(record, version_id, labels, now, value)

    async def credentials(self, registry_id: str, arn: str) -> BasicCredentials:
        """The upstream credentials a pull-through cache rule's ``credentialArn`` names: the
        secret's current value, JSON with ``username`` and ``accessToken``. Raises
        SecretNotFound, UnableToAccessSecret."""
        try:
            stored = await self.get_value(registry_id, arn)
        except (SecretNotFound, SecretRequestInvalid) as missing:
            raise SecretNotFound(
                f"The secret {arn} does not exist or is scheduled for deletion"
            ) from missing
        text = stored.value.text
        try:
            document = json.loads(text) if text is not None else None
        except ValueError:
            document = None
        if (
            not isinstance(document, dict)
            or not isinstance(document.get("username"), str)
            or not isinstance(document.get("accessToken"), str)
        ):
            raise UnableToAccessSecret(
                f"The secret {arn} must hold JSON with 'username' and 'accessToken' strings"
            )
        return BasicCredentials(document["username"], document["accessToken"])

    # -- helpers --------------------------------------------------------------------------

    def _open(self, record: SecretRecord, version: SecretVersion) -> SecretValue:
        try:
            plain = self._cipher.decrypt_bytes(
                version.ciphertext, _context(record, version.version_id)
            )
        except SecretUndecryptable as failed:
            raise UnableToAccessSecret(
                f"The value of {record.arn} cannot be decrypted: {failed}"
            ) from None
        if version.binary:
            return SecretValue(binary=plain)
        return SecretValue(text=plain.decode("utf-8"))

    async def _add_version(
        self,
        tx: MetadataTransaction,
        record: SecretRecord,
        version_id: str,
        value: SecretValue,
        labels: tuple[str, ...],
        versions: Sequence[SecretVersion],
        now: datetime,
    ) -> None:
        plain = value.binary if value.binary is not None else (value.text or "").encode("utf-8")
        await tx.put_secret_version(
            record.id,
            version_id,
            binary=value.binary is not None,
            ciphertext=self._cipher.encrypt_bytes(plain, _context(record, version_id)),
            stages=labels,
            now=now,
        )
        moved: dict[str, list[str]] = {}
        for version in versions:
            kept = [label for label in version.stages if label not in labels]
            if CURRENT in labels and PREVIOUS in kept:
                kept.remove(PREVIOUS)
            if CURRENT in labels and CURRENT in version.stages:
                kept.append(PREVIOUS)
            if tuple(kept) != version.stages:
                moved[version.version_id] = kept
        await tx.set_version_stages(record.id, moved)
        unlabelled = [v.version_id for v in versions if not moved.get(v.version_id, list(v.stages))]
        if len(unlabelled) > MAX_UNLABELLED_VERSIONS:
            await tx.delete_secret_versions(record.id, unlabelled[:-MAX_UNLABELLED_VERSIONS])
        await tx.update_secret(record.id, changed_at=now)

    async def _lookup(
        self, tx: MetadataTransaction, registry_id: str, secret_id: str, now: datetime
    ) -> SecretRecord | None:
        """The secret a SecretId names; one past its deletion date is forgotten first."""
        record = None
        match = _ARN.fullmatch(secret_id)
        if match is None:
            record = await tx.get_secret(registry_id, name=secret_id)
        elif match[1] == self._region and match[2] == registry_id:
            record = await tx.get_secret(registry_id, arn=secret_id)
            if record is None:  # a partial ARN: the name without the random suffix
                record = await tx.get_secret(registry_id, name=match[3])
                if (
                    record is not None
                    and record.arn != secret_id
                    and not _partial(record, secret_id)
                ):
                    record = None
        if record is not None and record.deleted_at is not None and record.deleted_at <= now:
            await tx.delete_secret(record.id)
            return None
        return record

    async def _require(
        self, tx: MetadataTransaction, registry_id: str, secret_id: str, *, usable: bool = False
    ) -> SecretRecord:
        record = await self._lookup(tx, registry_id, secret_id, self._clock())
        if record is None:
            raise SecretNotFound("Secrets Manager can't find the specified secret.")
        if usable and record.deleted_at is not None:
            raise _marked_for_deletion("it was marked for deletion")
        return record


def _exists(name: str) -> SecretExists:
    return SecretExists(f"The operation failed because the secret {name} already exists.")


def _partial(record: SecretRecord, arn: str) -> bool:
    return record.arn.startswith(arn) and _SUFFIX.fullmatch(record.arn[len(arn) :]) is not None


def _context(record: SecretRecord, version_id: str) -> str:
    return f"{record.arn}#{version_id}"


def _day(moment: datetime) -> datetime:
    # LastAccessedDate is a date: AWS rounds it down to midnight UTC.
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _marked_for_deletion(why: str) -> SecretRequestInvalid:
    return SecretRequestInvalid(f"You can't perform this operation on the secret because {why}.")


def _choose(
    versions: Sequence[SecretVersion], version_id: str | None, stage: str | None
) -> SecretVersion:
    if version_id is not None:
        found = next((v for v in versions if v.version_id == version_id), None)
        if found is None or (stage is not None and stage not in found.stages):
            raise SecretNotFound(
                f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"
            )
        return found
    label = stage or CURRENT
    found = next((v for v in versions if label in v.stages), None)
    if found is None:
        raise SecretNotFound(
            f"Secrets Manager can't find the specified secret value for staging label: {label}"
        )
    return found


def _check_tags(tags: Mapping[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise InvalidParameter(f"A secret may have at most {MAX_TAGS} tags.")
    for key in tags:
        if key.lower().startswith("aws:"):
            raise InvalidParameter("Tag keys beginning with 'aws:' are reserved.")


async def _description(tx: MetadataTransaction, record: SecretRecord) -> SecretDescription:
    versions = await tx.secret_versions(record.id)
    return SecretDescription(
        record,
        await tx.secret_tags(record.id),
        {v.version_id: v.stages for v in versions if v.stages},
    )


def _matches(description: SecretDescription, key: str, values: Sequence[str]) -> bool:
    fields: list[str]
    record = description.secret
    if key == "name":
        fields = [record.name]
    elif key == "description":
        fields = [record.description or ""]
    elif key == "tag-key":
        fields = list(description.tags)
    elif key == "tag-value":
        fields = list(description.tags.values())
    elif key == "primary-region":
        fields = [record.region]
    elif key == "owning-service":
        fields = []
    else:  # all
        fields = [
            record.name,
            record.description or "",
            *description.tags,
            *description.tags.values(),
        ]
    for value in values:
        negated = value.startswith("!")
        prefix = value[1:] if negated else value
        hit = any(f.lower().startswith(prefix.lower()) for f in fields)
        if hit != negated:
            return True
    return False


def _sort_key(description: SecretDescription, sort_by: str) -> tuple[object, ...]:
    record = description.secret
    if sort_by == "name":
        return (record.name,)
    if sort_by == "last-changed-date":
        return (record.changed_at, record.name)
    if sort_by == "last-accessed-date":
        return (record.accessed_at or record.created_at, record.name)
    return (record.created_at, record.name)
