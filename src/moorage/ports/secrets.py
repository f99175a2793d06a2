"""The secret records port: Secrets Manager's secrets, their versions and their tags.

Part of every metadata transaction (``MetadataTransaction`` includes :class:`SecretRecords`).
Secrets are those of the transaction's region. Values arrive here already encrypted
(``ciphertext``): the store never sees a clear secret. The schema is in
``storage/metadata/sql/tables.py``; the service in ``services/secrets.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SecretRecord:
    id: int
    registry_id: str
    region: str
    name: str
    arn: str
    description: str | None
    kms_key_id: str | None
    created_at: datetime
    changed_at: datetime
    accessed_at: datetime | None
    deleted_at: datetime | None  # when a scheduled deletion takes effect


@dataclass(frozen=True, slots=True)
class SecretVersion:
    version_id: str
    binary: bool
    ciphertext: bytes
    stages: tuple[str, ...]
    created_at: datetime


class SecretRecords(Protocol):
    async def create_secret(
        self,
        registry_id: str,
        name: str,
        arn: str,
        now: datetime,
        *,
        description: str | None,
        kms_key_id: str | None,
    ) -> SecretRecord | None:
        """A new secret; None when the name has one in this region already."""
        ...

    async def get_secret(
        self, registry_id: str, *, name: str | None = None, arn: str | None = None
    ) -> SecretRecord | None:
        """The secret of that name or ARN in this region."""
        ...

    async def list_secrets(self, registry_id: str, limit: int) -> list[SecretRecord]:
        """At most ``limit`` of the registry's secrets in this region, by name."""
        ...

    async def count_secrets(self, registry_id: str) -> int: ...

    async def update_secret(
        self,
        secret_id: int,
        *,
        description: str | None = None,
        kms_key_id: str | None = None,
        changed_at: datetime | None = None,
        accessed_at: datetime | None = None,
        deleted_at: datetime | None = None,
        clear_deletion: bool = False,
    ) -> None:
        """Set what is given (None leaves a field as it is; ``clear_deletion`` cancels a
        scheduled deletion)."""
        ...

    async def delete_secret(self, secret_id: int) -> None:
        """Forget the secret, its versions and tags."""
        ...

    async def secret_versions(self, secret_id: int) -> list[SecretVersion]:
        """Every version, oldest first."""
        ...

    async def put_secret_version(
        self,
        secret_id: int,
        version_id: str,
        *,
        binary: bool,
        ciphertext: bytes,
        stages: Sequence[str],
        now: datetime,
    ) -> None: ...

    async def set_version_stages(self, secret_id: int, stages: Mapping[str, Sequence[str]]) -> None:
        """Set the staging labels of the versions named (version id -> labels)."""
        ...

    async def delete_secret_versions(self, secret_id: int, version_ids: Iterable[str]) -> None: ...

    async def secret_tags(self, secret_id: int) -> dict[str, str]: ...

    async def put_secret_tags(self, secret_id: int, tags: Mapping[str, str]) -> None: ...

    async def delete_secret_tags(self, secret_id: int, keys: Iterable[str]) -> None: ...
