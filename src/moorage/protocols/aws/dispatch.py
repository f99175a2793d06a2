"""``POST /`` with ``X-Amz-Target``: the fixed pipeline of every call of an AWS JSON service
(ECR, Secrets Manager; ``app.py`` picks the service).

1. method ``POST``, else 405 ``UnknownOperationException`` (with ``Allow: POST``);
2. ``X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Operation>`` naming an operation of the
   ECR model, and ``Content-Type: application/x-amz-json-1.1`` (or 1.0), else
   ``UnknownOperationException``: without both, AWS cannot tell which operation is meant;
3. the signer screened from the headers alone, where the authenticator can
   (:class:`~moorage.protocols.aws.auth.PreBodyScreen`: no signature, an unknown key),
   so that nobody without a key of ours makes the server buffer a body;
4. the body, read whole up to the operation's limit (413 ``RequestEntityTooLargeException``):
   ``max_body_size`` for the two operations that carry data (a layer part, a manifest), and
   ``max_control_body_size`` for every other; while the signature is unverified, its bytes
   count against ``unverified_budget`` (``ThrottlingException`` when it is spent), so that
   many large unauthenticated bodies cannot exhaust memory;
5. **authentication** (:class:`~moorage.protocols.aws.auth.ApiAuthenticator`), before the
   body is parsed, so that nobody unauthenticated learns what the validator thinks;
6. JSON (``SerializationException``);
7. the operation's handler, or ``UnsupportedOperationException`` for an ECR operation this
   registry has not built (never a fake success);
8. validation against the input shape (``shapes.deserialize_input``);
9. **authorization** of the operation's action (``iam.actions.action_of_operation``), failing
   closed, on the repository the input names (``repositoryName``, else the one in
   ``resourceArn``, else each of ``repositoryNames``), else on the registry; the tagging
   operations' checks carry ``aws:RequestTag/*`` and ``aws:TagKeys``;
10. the handler, and its result written to the output shape.

Every response carries ``x-amzn-RequestId``. A domain exception becomes its AWS error through
the service's error table (``ecr/errors.py`` for ECR); anything else becomes a 500
``ServerException`` naming the request id, with the details in the log (never a header or the
body of the request).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar

from aiohttp import ClientConnectionError, web

from moorage.domain.errors import RegistryError
from moorage.iam.sigv4 import INVALID_SIGNATURE, SignatureError, SignedRequest, signed_region
from moorage.ports.access import AuthenticationFailed, Authorizer, Principal
from moorage.protocols.aws import shapes
from moorage.protocols.aws.auth import ApiAuthenticator, PreBodyScreen, signed_request
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.errors import (
    REQUEST_TOO_LARGE,
    SERIALIZATION_EXCEPTION,
    THROTTLING,
    UNKNOWN_OPERATION,
    UNSUPPORTED_OPERATION,
    ApiError,
    ErrorTable,
    api_error_for,
    server_error,
)
from moorage.protocols.aws.operations import OperationTable
from moorage.protocols.aws.resources import ECR, ResourceNaming
from moorage.protocols.aws.responses import error_response, json_response
from moorage.protocols.connections import discard_unread_body, pause_after_refusal

log = logging.getLogger("moorage.ecr_api")

S = TypeVar("S")
T = TypeVar("T")
P = ParamSpec("P")

CONTENT_TYPES = frozenset({"application/x-amz-json-1.1", "application/x-amz-json-1.0"})
# UploadLayerPart carries up to 20 MiB, which base64 makes 28 MiB; the rest is headroom.
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024
# Every other operation's input is small: the largest (a lifecycle policy, 30 KiB; scanning
# rules, 51 KiB) is far below this.
DEFAULT_MAX_CONTROL_BODY_SIZE = 1024 * 1024
# The operations whose input carries data: a layer part (20 MiB), a manifest (4 MiB, up to six
# times that escaped in JSON).
_DATA_OPERATIONS = frozenset({"UploadLayerPart", "PutImage"})
# Bytes of bodies held at once while their signature is unverified, across all clients.
DEFAULT_UNVERIFIED_BUDGET = 128 * 1024 * 1024
# Parsing and decoding a body past this size (a layer part) runs in a thread: a 28 MiB part
# takes tens of milliseconds, which every other request on the loop would wait for.
_INLINE_BODY_SIZE = 256 * 1024


@dataclass(frozen=True)
class Dispatcher(Generic[S]):
    """Serves one AWS JSON service (``operations.service``: ``ecr``, ``secretsmanager``) from
    ``operations``; see the module docstring for the pipeline. ``errors`` maps the domain
    exceptions its operations raise to the service's error names."""

    operations: OperationTable[S]
    authenticator: ApiAuthenticator
    authorizer: Authorizer
    services: S
    region: str
    errors: ErrorTable = ()
    # True for a service whose resources the handlers must find first (a secret's ARN
    # comes from its name): the dispatcher does not authorize the operation itself, and a
    # handler that returns without asking the authorizer is a bug (500), never an open door.
    handlers_authorize: bool = False
    # The services and authorizer of another region, for a request signed for it; None when
    # that region is not served. Without it every request acts in ``region``.
    in_region: Callable[[str], tuple[S, Authorizer] | None] | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    max_control_body_size: int = DEFAULT_MAX_CONTROL_BODY_SIZE
    unverified_budget: ByteBudget = field(
        default_factory=lambda: ByteBudget(DEFAULT_UNVERIFIED_BUDGET)
    )
    # The service's actions and repository ARNs (ECR's, or ECR Public's).
    naming: ResourceNaming = ECR
    # The error of an operation of the model with no handler yet (ECR's model has no error
    # for it; ECR Public's has UnsupportedCommandException).
    unsupported_code: str = UNSUPPORTED_OPERATION
    # The registry id a ``registryId`` input names when it is not an account id (ECR
    # Public takes a registry alias there); raises the service's error when none.
    registry_of: Callable[[S, str], Awaitable[str]] | None = None

    @property
    def service(self) -> str:
        return self.operations.service

    @property
    def target_prefix(self) -> str:
        return shapes.target_prefix(self.service)

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp handler for every method on ``/``. Never raises but for cancellation."""
        request_id = str(uuid.uuid4())
        if request.method != "POST":
            return error_response(
                ApiError(UNKNOWN_OPERATION, "The ECR API accepts only POST /.", status=405),
                request_id,
                headers={"Allow": "POST"},
            )
        operation = "-"
        try:
            operation = _operation_name(request, self.service)
            return await self._call(request, operation, request_id)
        except ApiError as error:
            return error_response(error, request_id)
        except RegistryError as exc:
            mapped = api_error_for(exc, self.errors)
            if mapped is None:
                _log_failure(operation, request_id, exc)
                mapped = server_error(request_id)
            return error_response(mapped, request_id)
        except Exception as exc:
            _log_failure(operation, request_id, exc)
            return error_response(server_error(request_id), request_id)

    async def _call(self, request: web.Request, operation: str, request_id: str) -> web.Response:
        headers_only = signed_request(request, "")
        screened: object = None
        if isinstance(self.authenticator, PreBodyScreen):
            try:
                screened = await self.authenticator.screen(headers_only, request.remote)
            except (AuthenticationFailed, SignatureError) as failure:
                discard_unread_body(request)
                await pause_after_refusal(request)
                raise ApiError(failure.code, failure.message) from None
        limit = self.max_body_size
        if operation not in _DATA_OPERATIONS:
            limit = min(limit, self.max_control_body_size)
        with self.unverified_budget.hold() as held:
            body, body_sha256 = await _read_body(request, limit, held)
            signed = replace(headers_only, body_sha256=body_sha256)
            principal = await self._authenticate(request, signed, screened)
        document = await _off_loop(body, _parse_json, body)
        handler = self.operations.get(operation)
        if handler is None:
            raise ApiError(
                self.unsupported_code,
                f"The operation {operation} is not supported by this registry yet.",
            )
        model = shapes.operation_model(operation, self.service)
        if model is None:  # the table only holds the service's operations; a bug if it happens
            raise RuntimeError(f"{operation} has a handler but no model")
        params = await _off_loop(body, shapes.deserialize_input, model, document)
        ctx = await self._context(request, operation, request_id, principal, params, signed)
        if not self.handlers_authorize:
            await _authorize_operation(ctx, params)
        result = await handler(ctx, params)
        if self.handlers_authorize and not ctx.checks:
            raise RuntimeError(f"{self.service} {operation} answered without authorizing")
        return json_response(shapes.serialize_output(model, result), request_id)

    async def _authenticate(
        self, request: web.Request, signed: SignedRequest, screened: object
    ) -> Principal:
        try:
            if isinstance(self.authenticator, PreBodyScreen):
                return await self.authenticator.authenticate_screened(
                    signed, screened, request.remote
                )
            return await self.authenticator.authenticate(signed, request.remote)
        except (AuthenticationFailed, SignatureError) as failure:
            # Both carry AWS's code and a message fit for the client.
            await pause_after_refusal(request)
            raise ApiError(failure.code, failure.message) from None

    async def _context(
        self,
        request: web.Request,
        operation: str,
        request_id: str,
        principal: Principal,
        params: dict[str, Any],
        signed: SignedRequest,
    ) -> ApiContext[S]:
        region, services, authorizer = self._region_of(signed)
        registry_id: str = params.get("registry_id") or principal.registry_id
        if self.registry_of is not None and not registry_id.isdigit():
            registry_id = await self.registry_of(services, registry_id)
        repository: str | None = params.get("repository_name")
        resource_arn: str | None = params.get("resource_arn")
        if repository is None and resource_arn is not None:
            arn = self.naming.parse_repository_arn(resource_arn, region=region)
            registry_id, repository = arn.registry_id, arn.name
        return ApiContext(
            operation=operation,
            principal=principal,
            registry_id=registry_id,
            region=region,
            request_id=request_id,
            source_ip=request.remote,
            secure_transport=request.secure,
            services=services,
            authorizer=authorizer,
            repository=repository,
            host=request.host,
            scheme=request.scheme,
            naming=self.naming,
        )

    def _region_of(self, signed: SignedRequest) -> tuple[str, S, Authorizer]:
        """The region a request acts in (the one it is signed for: on AWS each region is a
        registry of its own), with that region's services and authorizer. The authenticator
        has refused regions the deployment does not serve; emulator mode serves any region,
        but not a name that is not one."""
        if self.in_region is None:
            return self.region, self.services, self.authorizer
        asked = signed_region(signed)
        if asked is None or asked == self.region:
            return self.region, self.services, self.authorizer
        found = self.in_region(asked)
        if found is None:
            raise ApiError(
                INVALID_SIGNATURE, f"Credential should be scoped to a valid region, not '{asked}'."
            )
        services, authorizer = found
        return asked, services, authorizer


# Operations that set or remove resource tags: their check carries aws:RequestTag/<key> (the
# tags set) and aws:TagKeys (the keys named), as AWS's does.
_TAGGING_OPERATIONS = frozenset({"CreateRepository", "TagResource", "UntagResource"})


def _tag_conditions(
    operation: str, params: dict[str, Any]
) -> tuple[dict[str, str] | None, tuple[str, ...] | None]:
    """``(request_tags, tag_keys)`` of a tagging operation; ``(None, None)`` when it names no
    tags (the condition keys are then absent, not empty) or tags nothing."""
    if operation not in _TAGGING_OPERATIONS:
        return None, None
    if operation == "UntagResource":
        keys = params.get("tag_keys") or []
        return None, (tuple(dict.fromkeys(keys)) or None)
    # A key given twice keeps its last value, as the operation stores it.
    tags = {tag["key"]: tag["value"] for tag in params.get("tags") or ()}
    if not tags:
        return None, None
    return tags, tuple(tags)


async def _authorize_operation(ctx: ApiContext[Any], params: dict[str, Any]) -> None:
    action = ctx.naming.action_of(ctx.operation)
    if ctx.repository is not None:
        request_tags, tag_keys = _tag_conditions(ctx.operation, params)
        await ctx.authorize(action, ctx.repository, request_tags=request_tags, tag_keys=tag_keys)
        return
    names = params.get("repository_names")
    if ctx.operation not in ctx.naming.registry_operations and names:
        # DescribeRepositories(repositoryNames=[...]) is allowed by a policy on those
        # repositories alone, as on AWS; without names it is a question about the registry.
        for name in names:
            await ctx.authorize(action, name)
        return
    await ctx.authorize(action, None)


async def _off_loop(body: bytes, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(...)``, in a thread when ``body`` is large enough for it to stall the loop."""
    if len(body) <= _INLINE_BODY_SIZE:
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


def _operation_name(request: web.Request, service: str) -> str:
    target = request.headers.get("X-Amz-Target", "")
    prefix, dot, name = target.partition(".")
    expected = shapes.target_prefix(service)
    if not dot or prefix != expected or shapes.operation_model(name, service) is None:
        raise ApiError(
            UNKNOWN_OPERATION,
            f"The X-Amz-Target header must name an operation of the API: {expected}.<Operation>.",
        )
    if request.content_type not in CONTENT_TYPES:
        raise ApiError(UNKNOWN_OPERATION, "The Content-Type must be application/x-amz-json-1.1.")
    return name


class ByteBudget:
    """Bytes held at once across requests; past ``capacity``, a request is refused."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0

    @contextmanager
    def hold(self) -> Iterator[Callable[[int], None]]:
        """A ``take(n)`` that adds ``n`` bytes to this request's share, raising ApiError
        ``ThrottlingException`` when the budget is spent; the share is returned on exit."""
        taken = 0

        def take(size: int) -> None:
            nonlocal taken
            if self.in_use + size > self.capacity:
                raise ApiError(
                    THROTTLING, "Too many large requests are arriving at once; retry shortly."
                )
            self.in_use += size
            taken += size

        try:
            yield take
        finally:
            self.in_use -= taken


async def _read_body(
    request: web.Request, limit: int, take: Callable[[int], None]
) -> tuple[bytes, str]:
    """The whole body and its hex SHA-256; 413 past ``limit`` bytes, declared or received.
    Each chunk (or the declared length, up front) is ``take``n from the unverified budget."""
    declared = request.content_length
    if declared is not None and declared > limit:
        discard_unread_body(request)
        _too_large(limit)
    if declared:
        take(declared)
    hasher = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                _too_large(limit)
            if declared is None or size > declared:
                take(len(chunk))
            hasher.update(chunk)
            chunks.append(chunk)
    except (ConnectionError, ClientConnectionError) as exc:
        # The client went away mid-body: nobody reads the answer but the access log.
        log.info("connection lost while reading a request body: %s", exc)
        raise ApiError("RequestAbortedException", "The client closed the connection.") from None
    return b"".join(chunks), hasher.hexdigest()


def _too_large(limit: int) -> NoReturn:
    raise ApiError(REQUEST_TOO_LARGE, f"The request body is larger than {limit} bytes.")


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``, as for an operation without input."""
    if not body.strip():
        return {}
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        raise ApiError(SERIALIZATION_EXCEPTION, "The request body is not valid JSON.") from None
    except RecursionError:
        # json's decoder recurses per level; no ECR input nests more than a few levels.
        raise ApiError(SERIALIZATION_EXCEPTION, "The request body is nested too deeply.") from None
    if not isinstance(document, dict):
        raise ApiError(SERIALIZATION_EXCEPTION, "The request body must be a JSON object.")
    return document


def _log_failure(operation: str, request_id: str, exc: BaseException) -> None:
    log.error("ECR API %s failed; request id %s", operation, request_id, exc_info=exc)
