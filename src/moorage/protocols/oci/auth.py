"""The one place that decides whether a ``/v2/`` request may proceed.

Each handler declares the ECR action it needs with :func:`requires` (or :func:`public` for
the API version check, which only authenticates). The middleware authenticates the caller
once, then asks the authorizer about the declared action on the repository named in the
URL. A handler without a declaration is refused: access control fails closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiohttp import web

from moorage.domain.errors import AccessDenied, RepositoryNotFound
from moorage.iam.actions import Action
from moorage.ports.access import AccessRequest, Credentials
from moorage.protocols.oci.context import (
    NAME_KEY,
    PRINCIPAL_KEY,
    REGISTRY_ID_KEY,
    addressed_registry,
    principal,
    registry_id,
    select_region,
    services,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

_ACTION_ATTRIBUTE = "__moorage_action__"
_NO_ACTION = "authenticate-only"


def requires(action: Action) -> Callable[[H], H]:
    """Declare the ECR action a handler performs on the repository in its URL."""

    def mark(handler: H) -> H:
        setattr(handler, _ACTION_ATTRIBUTE, action)
        return handler

    return mark


def public(handler: H) -> H:
    """Declare a handler that needs an authenticated caller but no action."""
    setattr(handler, _ACTION_ATTRIBUTE, _NO_ACTION)
    return handler


def declared_action(handler: object) -> Action | str | None:
    return getattr(handler, _ACTION_ATTRIBUTE, None)


def credentials_of(request: web.Request) -> Credentials:
    return Credentials(
        authorization=request.headers.get("Authorization"),
        source_ip=request.remote,
        secure_transport=request.secure,
    )


# What another deployment's replication may do here (iam/replica_tokens.py): write and delete
# replicas, and look at what is there already. Each is authorized as ecr:ReplicateImage, the
# one action a destination's registry policy grants a replicating account (ECR's model).
REPLICA_ACTIONS = frozenset(
    {
        Action.BATCH_CHECK_LAYER_AVAILABILITY,
        Action.INITIATE_LAYER_UPLOAD,
        Action.UPLOAD_LAYER_PART,
        Action.COMPLETE_LAYER_UPLOAD,
        Action.PUT_IMAGE,
        Action.BATCH_DELETE_IMAGE,
        Action.BATCH_GET_IMAGE,
    }
)
REPLICATE_IMAGE = "ecr:ReplicateImage"


async def authorize(request: web.Request, action: Action | str, repository: str | None) -> None:
    """Ask the authorizer about one more (action, repository), e.g. a mount's source. For
    another deployment's replication, the actions it may take are asked as
    ecr:ReplicateImage (and ecr:CreateRepository as itself); any other is refused."""
    if principal(request).replicating:
        if action == Action.CREATE_REPOSITORY:
            pass
        elif action in REPLICA_ACTIONS:
            action = REPLICATE_IMAGE
        else:
            raise AccessDenied(f"replication may not perform {action}")
    await services(request).authorizer.authorize(
        AccessRequest(
            principal=principal(request),
            action=action,
            registry_id=registry_id(request),
            repository=repository,
            credentials=credentials_of(request),
        )
    )


async def allowed_repositories(
    request: web.Request, action: Action, repositories: Sequence[str]
) -> list[str]:
    """Those of ``repositories`` on which the caller may do ``action``, asked in one go."""
    return await services(request).authorizer.allowed_repositories(
        AccessRequest(
            principal=principal(request),
            action=action,
            registry_id=registry_id(request),
            repository=None,
            credentials=credentials_of(request),
        ),
        repositories,
    )


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v2"):
        return await handler(request)
    route_handler = request.match_info.handler
    action = declared_action(route_handler)
    if action is None:
        if getattr(request.match_info, "http_exception", None) is not None:
            return await handler(request)  # not found / method not allowed: nothing to protect
        raise AccessDenied("endpoint declares no access rule")
    if not select_region(request):
        raise RepositoryNotFound(
            f"this registry does not serve the region the host {request.host!r} names"
        )
    credentials = credentials_of(request)
    caller = await services(request).authenticator.authenticate(credentials)
    request[PRINCIPAL_KEY] = caller
    # Replication writes into the account its token names, whatever the host says.
    addressed = caller.acts_in or addressed_registry(request) or caller.registry_id
    name: str | None = request.match_info.get("name")
    resolve = services(request).path_names
    if resolve is not None and name is not None:
        addressed, name = await resolve(name)
        request[NAME_KEY] = name
    request[REGISTRY_ID_KEY] = addressed
    if isinstance(action, Action):
        await authorize(request, action, name)
    return await handler(request)
