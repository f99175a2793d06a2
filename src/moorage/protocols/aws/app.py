"""Mount the AWS APIs (AWS JSON 1.1 on ``POST /``) on an aiohttp application.

Several services share the one route: :class:`Endpoint` picks the service whose target prefix
begins ``X-Amz-Target`` (``AmazonEC2ContainerRegistry_V20150921`` for ECR, ``secretsmanager``
for Secrets Manager), and hands the request to that service's :class:`Dispatcher`. A request
naming no mounted service goes to the first one mounted (ECR), which answers it as it answers
any target it does not know: ``UnknownOperationException``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from moorage.ports.access import Authorizer
from moorage.protocols.aws.auth import ApiAuthenticator
from moorage.protocols.aws.dispatch import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_UNVERIFIED_BUDGET,
    ByteBudget,
    Dispatcher,
)
from moorage.protocols.aws.ecr.errors import DOMAIN_ERRORS
from moorage.protocols.aws.errors import UNSUPPORTED_OPERATION, ErrorTable
from moorage.protocols.aws.operations import OperationTable
from moorage.protocols.aws.resources import ECR, ResourceNaming

S = TypeVar("S")


class Endpoint:
    """The services mounted on ``POST /``, by target prefix, and the one budget of body bytes
    held while their signatures are unverified (across every service: an attacker gains
    nothing by spreading bodies over them)."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, Dispatcher[Any]] = {}
        self._first: Dispatcher[Any] | None = None
        self.unverified_budget = ByteBudget(DEFAULT_UNVERIFIED_BUDGET)

    def add(self, dispatcher: Dispatcher[Any]) -> None:
        if dispatcher.target_prefix in self._by_prefix:
            raise ValueError(f"{dispatcher.service} is mounted already")
        self._by_prefix[dispatcher.target_prefix] = dispatcher
        self._first = self._first or dispatcher

    async def handle(self, request: web.Request) -> web.Response:
        prefix = request.headers.get("X-Amz-Target", "").partition(".")[0]
        dispatcher = self._by_prefix.get(prefix, self._first)
        assert dispatcher is not None  # mount() adds one before the route exists
        return await dispatcher.handle(request)


ENDPOINT = web.AppKey("moorage.aws.endpoint", Endpoint)


def mount(
    app: web.Application,
    *,
    operations: OperationTable[S],
    authenticator: ApiAuthenticator,
    authorizer: Authorizer,
    services: S,
    region: str,
    in_region: Callable[[str], tuple[S, Authorizer] | None] | None = None,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    errors: ErrorTable | None = None,
    handlers_authorize: bool = False,
    naming: ResourceNaming = ECR,
    unsupported_code: str = UNSUPPORTED_OPERATION,
    registry_of: Callable[[S, str], Awaitable[str]] | None = None,
) -> Dispatcher[S]:
    """Serve the service of ``operations`` on ``POST /`` (the route is added with the first
    service), and return its dispatcher.

    ``services`` is handed to each operation as ``ctx.services``; ``in_region`` gives
    another region's services and authorizer, for requests signed for it; ``errors`` is the
    service's table of domain exceptions (ECR's by default); ``handlers_authorize``: the
    operations authorize their own resources; ``naming``, ``unsupported_code`` and
    ``registry_of``: see ``Dispatcher``. The route needs no middleware:
    the dispatcher answers every failure itself, in AWS's error format.
    """
    endpoint = app.get(ENDPOINT)
    if endpoint is None:
        endpoint = app[ENDPOINT] = Endpoint()
        app.router.add_route("*", "/", endpoint.handle)
    dispatcher = Dispatcher(
        operations=operations,
        authenticator=authenticator,
        authorizer=authorizer,
        services=services,
        region=region,
        errors=DOMAIN_ERRORS if errors is None else errors,
        handlers_authorize=handlers_authorize,
        in_region=in_region,
        max_body_size=max_body_size,
        unverified_budget=endpoint.unverified_budget,
        naming=naming,
        unsupported_code=unsupported_code,
        registry_of=registry_of,
    )
    endpoint.add(dispatcher)
    return dispatcher
