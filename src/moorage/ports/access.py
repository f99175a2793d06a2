"""The access port: who is calling, and may they perform an ECR action on a resource.

Every ``/v2/`` handler declares the ECR action it needs; the protocol layer authenticates the
request once and asks the :class:`Authorizer` once per (action, repository). Identity and
policy evaluation (IAM) plug in here without touching handlers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from moorage.iam.actions import Action


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller, or the anonymous one (``arn`` is None).

    ``registry_id`` is the caller's own account. For an IAM user, ``arn`` is
    ``arn:aws:iam::<account>:user/<name>``, ``user_id`` its unique id (``AIDA...``, the
    ``aws:userid`` condition key) and ``username`` its name (``aws:username``).
    ``access_key_id`` is the key that signed the request or obtained the login token.
    """

    registry_id: str
    arn: str | None = None
    user_id: str | None = None
    username: str | None = None
    access_key_id: str | None = None
    # Another deployment replicating for account ``registry_id`` (its root) into account
    # ``acts_in`` here (iam/replica_tokens.py): it may only write replicas.
    replicating: bool = False
    acts_in: str | None = None

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

    ``action`` is an IAM action name (``ecr:PutImage``; :class:`Action` members are such
    strings). ``registry_id`` is the account that owns the resource. ``repository`` is None for
    registry-wide actions (the catalog, GetAuthorizationToken, registry policies), whose
    resource is ``*``. ``request_tags`` are the tags a request sets (CreateRepository,
    TagResource), for ``aws:RequestTag/*``; ``tag_keys`` the keys it names (``aws:TagKeys``).
    """

    principal: Principal
    action: Action | str
    registry_id: str
    repository: str | None
    credentials: Credentials
    request_tags: Mapping[str, str] | None = None
    tag_keys: tuple[str, ...] | None = None
    # The resource of another service's action (a Secrets Manager secret's ARN): it is the
    # resource instead of the repository, and only identity policies govern it.
    resource_arn: str | None = None


class Authenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> Principal:
        """Return the caller; raise Unauthenticated when credentials are required or invalid."""
        ...


class Authorizer(Protocol):
    async def authorize(self, request: AccessRequest) -> None:
        """Return when allowed; raise AccessDenied (or Unauthenticated for anonymous callers)."""
        ...

    async def allowed_repositories(
        self, request: AccessRequest, repositories: Sequence[str]
    ) -> list[str]:
        """Those of ``repositories`` (in order) on which ``request.action`` is allowed, as
        :meth:`authorize` would decide each one (``request.repository`` is ignored). Raises
        Unauthenticated for anonymous callers. Lists (the catalog) use it to ask in bulk."""
        ...


class AuthenticationFailed(Exception):
    """A signed ECR API request cannot be authenticated.

    ``code`` is the AWS error name to answer with (``UnrecognizedClientException``,
    ``InvalidSignatureException``, ``IncompleteSignatureException``,
    ``MissingAuthenticationTokenException``); ``message`` is safe to send to the client and
    never holds a secret.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
