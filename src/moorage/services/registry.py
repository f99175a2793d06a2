"""The registry's own settings: its registry policy and its account settings.

Account settings, as ECR names them (Get/PutAccountSetting; shared reference §3.5, §12)::

    name                     values               default
    BASIC_SCAN_TYPE_VERSION  AWS_NATIVE | CLAIR   AWS_NATIVE
    REGISTRY_POLICY_SCOPE    V1 | V2              V2
    BLOB_MOUNTING            ENABLED | DISABLED   ENABLED

The registry scanning configuration (Put/GetRegistryScanningConfiguration,
BatchGetRepositoryScanningConfiguration; shared reference §6.2) lives here too: it is
registry-wide, and ``domain/scanning_configuration.py`` says what it means per repository.

The values are those of the API reference. The newest botocore model's prose lists fewer
(only AWS_NATIVE, only V2), as AWS retires Clair and moves registries to V2; an emulator
that still accepts the older values lets tests cover registries that have them. The scan
type only selects the name of the engine reported: moorage has one scanner.

``BLOB_MOUNTING`` defaults to ENABLED here, whereas AWS documents it as something to turn on:
moorage has always mounted blobs across repositories (``?mount=&from=``), and a changed
default would slow every existing deployment's cross-repository pushes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from moorage.domain.errors import InvalidParameter, RegistryPolicyNotFound
from moorage.domain.models import AccountSetting, PolicyTexts, Repository
from moorage.domain.scanning_configuration import (
    DEFAULT_CONFIGURATION,
    RegistryScanningConfiguration,
    RepositoryScanning,
    check_configuration,
    effective_scanning,
)
from moorage.ports.clock import Clock
from moorage.ports.metadata import MetadataStore
from moorage.services.repositories import check_policy_text


class RegistryPolicyScope(StrEnum):
    """Which ECR actions the registry policy governs (see services/authorization.py)."""

    V1 = "V1"  # replication, pull-through import and repository creation only
    V2 = "V2"  # every ECR action


@dataclass(frozen=True, slots=True)
class _Setting:
    values: tuple[str, ...]
    default: str


ACCOUNT_SETTINGS: Mapping[AccountSetting, _Setting] = {
    AccountSetting.BASIC_SCAN_TYPE_VERSION: _Setting(("AWS_NATIVE", "CLAIR"), "AWS_NATIVE"),
    AccountSetting.REGISTRY_POLICY_SCOPE: _Setting(
        tuple(RegistryPolicyScope), RegistryPolicyScope.V2.value
    ),
    AccountSetting.BLOB_MOUNTING: _Setting(("ENABLED", "DISABLED"), "ENABLED"),
}


class RegistryPolicies(NamedTuple):
    """What authorization needs beyond identity policies, read together (``policies_for``)."""

    repository_policy: str | None
    registry_policy: str | None
    registry_policy_scope: RegistryPolicyScope
    repository_tags: Mapping[str, str]


# ECR's only failure code of BatchGetRepositoryScanningConfiguration.
REPOSITORY_NOT_FOUND = "REPOSITORY_NOT_FOUND"


class RepositoryScanningConfiguration(NamedTuple):
    """One repository and how its images are scanned."""

    repository: Repository
    scanning: RepositoryScanning


class ScanningConfigurationFailure(NamedTuple):
    repository_name: str
    failure_code: str
    failure_reason: str


class RegistryService:
    def __init__(self, metadata: MetadataStore, clock: Clock) -> None:
        self._metadata = metadata
        self._clock = clock

    # -- registry policy ----------------------------------------------------------------

    async def put_policy(self, registry_id: str, text: str) -> str:
        """PutRegistryPolicy: replace the registry policy; returns the text as stored.

        Raises InvalidParameter (over 10,240 characters), PolicyTextInvalid.
        """
        check_policy_text(text, "registry")
        async with self._metadata.transaction() as tx:
            await tx.put_registry_policy(registry_id, text, self._clock())
        return text

    async def get_policy(self, registry_id: str) -> str:
        """GetRegistryPolicy. Raises RegistryPolicyNotFound."""
        async with self._metadata.read() as tx:
            text = await tx.get_registry_policy(registry_id)
        if text is None:
            raise _policy_not_found(registry_id)
        return text

    async def delete_policy(self, registry_id: str) -> str:
        """DeleteRegistryPolicy; returns the text it removed. Raises RegistryPolicyNotFound."""
        async with self._metadata.transaction() as tx:
            text = await tx.delete_registry_policy(registry_id)
        if text is None:
            raise _policy_not_found(registry_id)
        return text

    # -- account settings ---------------------------------------------------------------

    async def get_account_setting(self, registry_id: str, name: str) -> str:
        """GetAccountSetting: the value put, else the default. Raises InvalidParameter for
        a name ECR does not define."""
        setting = _setting(name)
        async with self._metadata.read() as tx:
            value = await tx.get_account_setting(registry_id, name)
        return setting.default if value is None else value

    async def put_account_setting(self, registry_id: str, name: str, value: str) -> str:
        """PutAccountSetting; returns the value stored. Raises InvalidParameter for an unknown
        name or a value the setting does not take."""
        setting = _setting(name)
        if value not in setting.values:
            raise InvalidParameter(
                f"Invalid parameter at 'value' failed to satisfy constraint: 'Valid values for "
                f"{name} are: {', '.join(setting.values)}'",
                detail={"name": name, "value": value},
            )
        async with self._metadata.transaction() as tx:
            await tx.put_account_setting(registry_id, name, value)
        return value

    # -- registry scanning configuration --------------------------------------------------

    async def put_scanning_configuration(
        self, registry_id: str, config: RegistryScanningConfiguration
    ) -> RegistryScanningConfiguration:
        """PutRegistryScanningConfiguration: replace the configuration; returns it as stored.

        Raises InvalidParameter for a frequency the scan type does not take, or a bound of
        the model broken (see ``domain/scanning_configuration.py``).
        """
        check_configuration(config)
        async with self._metadata.transaction() as tx:
            await tx.put_registry_scanning_configuration(registry_id, config, self._clock())
        return config

    async def get_scanning_configuration(self, registry_id: str) -> RegistryScanningConfiguration:
        """GetRegistryScanningConfiguration: the configuration put, else BASIC without rules."""
        async with self._metadata.read() as tx:
            config = await tx.get_registry_scanning_configuration(registry_id)
        return config or DEFAULT_CONFIGURATION

    async def repository_scanning(
        self, registry_id: str, names: Sequence[str]
    ) -> tuple[list[RepositoryScanningConfiguration], list[ScanningConfigurationFailure]]:
        """BatchGetRepositoryScanningConfiguration: each named repository's scanning, in the
        order asked (a name given twice counts once), and a REPOSITORY_NOT_FOUND failure for
        each name that is not a repository. One read transaction."""
        found: list[RepositoryScanningConfiguration] = []
        failures: list[ScanningConfigurationFailure] = []
        async with self._metadata.read() as tx:
            config = await tx.get_registry_scanning_configuration(registry_id)
            config = config or DEFAULT_CONFIGURATION
            for name in dict.fromkeys(names):
                repository = await tx.get_repository(registry_id, name)
                if repository is None:
                    # The code again as the reason: what ECR answers, as far as public
                    # evidence shows (moto's tests, written against it).
                    failures.append(
                        ScanningConfigurationFailure(
                            name, REPOSITORY_NOT_FOUND, REPOSITORY_NOT_FOUND
                        )
                    )
                    continue
                scanning = effective_scanning(config, repository.name, repository.scan_on_push)
                found.append(RepositoryScanningConfiguration(repository, scanning))
        return found, failures

    async def scanning_for(self, registry_id: str, repository: Repository) -> RepositoryScanning:
        """How ``repository``'s images are scanned now: whether a push triggers a scan
        (``scan_on_push``), whether StartImageScan may (``manual_scans``), and which filters
        put it there. For the scanner, on every push."""
        config = await self.get_scanning_configuration(registry_id)
        return effective_scanning(config, repository.name, repository.scan_on_push)

    # -- for authorization --------------------------------------------------------------

    async def policies_for_many(
        self, registry_id: str, repository_names: Sequence[str]
    ) -> dict[str, RegistryPolicies]:
        """:meth:`policies_for` of many repositories, in one read transaction (the catalog)."""
        async with self._metadata.read() as tx:
            texts = await tx.read_policies_many(registry_id, repository_names)
        return {name: _registry_policies(text) for name, text in texts.items()}

    async def policies_for(self, registry_id: str, repository_name: str | None) -> RegistryPolicies:
        """The repository's policy (None when the repository or its policy is absent, or no
        name is given), the registry policy, and the registry policy scope (default V2).

        One read transaction and one statement: authorization calls this on every request.
        """
        async with self._metadata.read() as tx:
            texts = await tx.read_policies(registry_id, repository_name)
        return _registry_policies(texts)


def _registry_policies(texts: PolicyTexts) -> RegistryPolicies:
    scope = texts.registry_policy_scope
    return RegistryPolicies(
        repository_policy=texts.repository_policy,
        registry_policy=texts.registry_policy,
        registry_policy_scope=RegistryPolicyScope(scope or RegistryPolicyScope.V2),
        repository_tags=texts.repository_tags,
    )


def _setting(name: str) -> _Setting:
    try:
        return ACCOUNT_SETTINGS[AccountSetting(name)]
    except ValueError:
        raise InvalidParameter(
            f"Invalid parameter at 'name' failed to satisfy constraint: 'Member must be one of: "
            f"{', '.join(ACCOUNT_SETTINGS)}'",
            detail={"name": name},
        ) from None


def _policy_not_found(registry_id: str) -> RegistryPolicyNotFound:
    return RegistryPolicyNotFound(
        f"Registry policy does not exist in the registry with id '{registry_id}'"
    )
