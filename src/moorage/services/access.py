"""Authenticators that need no identities: open access, and emulator mode.

``AnonymousAuthenticator`` with ``OpenAccess`` answers every question with "allowed"; the
in-process tests of the registry protocol use them. ``EmulatorAuthenticator`` is emulator
mode's ``/v2/`` door: every caller, with or without credentials, is the root user of the
emulator's account, whose own policies then apply as AWS applies them to a root user.
"""

from __future__ import annotations

from collections.abc import Sequence

from moorage.iam.actions import account_root_arn
from moorage.ports.access import AccessRequest, Credentials, Principal


class AnonymousAuthenticator:
    def __init__(self, registry_id: str) -> None:
        self._principal = Principal(registry_id=registry_id)

    async def authenticate(self, credentials: Credentials) -> Principal:
        return self._principal


class OpenAccess:
    async def authorize(self, request: AccessRequest) -> None:
        return None

    async def allowed_repositories(
        self, request: AccessRequest, repositories: Sequence[str]
    ) -> list[str]:
        return list(repositories)


def emulator_principal(registry_id: str) -> Principal:
    return Principal(registry_id=registry_id, arn=account_root_arn(registry_id))


class EmulatorAuthenticator:
    """Everyone is the emulator account's root user (emulator mode only)."""

    def __init__(self, registry_id: str) -> None:
        self._principal = emulator_principal(registry_id)

    async def authenticate(self, credentials: Credentials) -> Principal:
        return self._principal
