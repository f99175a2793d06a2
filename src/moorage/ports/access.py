"""The access port: who is calling, and may they perform an ECR action on a resource.

Every ``/v2/`` handler declares the ECR action it needs; the protocol layer authenticates the
request once and asks the :class:`Authorizer` once per (action, repository). Identity and
policy evaluation (IAM) plug in here without touching handlers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from moorage.iam.actions import Action


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, or the anonymous one (``arn`` is None)."""

    registry_id: str
    arn: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.arn is None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented, before it is verified."""

    authorization: str | None = None
    source_ip: str | None = None
    secure_transport: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One authorization question: may ``principal`` do ``action`` on ``repository``?

    ``repository`` is None for registry-wide actions (the catalog).
    """

    principal: Principal
    action: Action
    registry_id: str
    repository: str | None
    credentials: Credentials


class Authenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> Principal:
        """Return the caller; raise Unauthenticated when credentials are required or invalid."""
        ...


class Authorizer(Protocol):
    async def authorize(self, request: AccessRequest) -> None:
        """Return when allowed; raise AccessDenied (or Unauthenticated for anonymous callers)."""
        ...
