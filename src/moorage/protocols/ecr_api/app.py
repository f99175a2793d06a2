"""Mount the ECR control-plane API (AWS JSON 1.1, ``POST /``) on an aiohttp application."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from moorage.ports.access import Authorizer
from moorage.protocols.ecr_api.auth import ApiAuthenticator
from moorage.protocols.ecr_api.dispatch import DEFAULT_MAX_BODY_SIZE, Dispatcher
from moorage.protocols.ecr_api.operations import OperationTable

S = TypeVar("S")


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
) -> Dispatcher[S]:
    """Route every method on ``/`` to the ECR API dispatcher, and return the dispatcher.

    ``services`` is handed to each operation as ``ctx.services``; ``in_region`` gives
    another region's services and authorizer, for requests signed for it. The route needs no
    middleware: the dispatcher answers every failure itself, in AWS's error format.
    """
    dispatcher = Dispatcher(
        operations=operations,
        authenticator=authenticator,
        authorizer=authorizer,
        services=services,
        region=region,
        in_region=in_region,
        max_body_size=max_body_size,
    )
    app.router.add_route("*", "/", dispatcher.handle)
    return dispatcher
