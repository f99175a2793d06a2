"""Access decisions before IAM exists: everyone is the registry's anonymous principal.

``OpenAccess`` answers every question with "allowed"; it is what ``moorage serve`` runs
until identities and policies are configured.
"""

from __future__ import annotations

from moorage.ports.access import AccessRequest, Credentials, Principal


class AnonymousAuthenticator:
    def __init__(self, registry_id: str) -> None:
        self._principal = Principal(registry_id=registry_id)

    async def authenticate(self, credentials: Credentials) -> Principal:
        return self._principal


class OpenAccess:
    async def authorize(self, request: AccessRequest) -> None:
        return None
