"""OCI error responses: the one table from domain exceptions to ``/v2/`` errors.

Body: ``{"errors": [{"code", "message", "detail"}]}`` (distribution-spec, "Error Codes").
An unexpected exception becomes a 500 with a request id; its details go to the log only.
Once a streamed response has started, an error can no longer become a body: the
connection is aborted instead (see ``blobs.py``).
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from moorage.domain import errors
from moorage.protocols.connections import discard_unread_body, pause_after_refusal
from moorage.protocols.oci.challenge import TOKEN_PATH, challenge_headers

log = logging.getLogger("moorage.oci")

API_VERSION_HEADER = {"Docker-Distribution-Api-Version": "registry/2.0"}

# exception type -> (code, HTTP status). The first matching base class in this order wins.
ERROR_TABLE: tuple[tuple[type[errors.RegistryError], str, int], ...] = (
    (errors.InvalidName, "NAME_INVALID", 400),
    (errors.RepositoryNotFound, "NAME_UNKNOWN", 404),
    (errors.InvalidTag, "MANIFEST_INVALID", 400),
    # Not in the distribution spec's table; ECR answers with the legacy code (reference §4.2).
    (errors.TagImmutable, "TAG_INVALID", 400),
    (errors.InvalidReference, "MANIFEST_INVALID", 400),
    (errors.InvalidDigest, "DIGEST_INVALID", 400),
    (errors.DigestMismatch, "DIGEST_INVALID", 400),
    (errors.SizeMismatch, "SIZE_INVALID", 400),
    (errors.BlobUnknown, "BLOB_UNKNOWN", 404),
    (errors.UploadUnknown, "BLOB_UPLOAD_UNKNOWN", 404),
    (errors.RangeInvalid, "BLOB_UPLOAD_INVALID", 416),
    (errors.UploadInvalid, "BLOB_UPLOAD_INVALID", 400),
    (errors.ManifestTooLarge, "MANIFEST_INVALID", 413),
    (errors.ManifestInvalid, "MANIFEST_INVALID", 400),
    (errors.ManifestUnknown, "MANIFEST_UNKNOWN", 404),
    (errors.ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN", 400),
    (errors.Unsupported, "UNSUPPORTED", 405),
    (errors.RepositoryNotEmpty, "UNSUPPORTED", 405),
    (errors.RepositoryAlreadyExists, "UNSUPPORTED", 405),
    (errors.AccessDenied, "DENIED", 403),
    (errors.Unauthenticated, "UNAUTHORIZED", 401),
    (errors.TooManyRequests, "TOOMANYREQUESTS", 429),
    # distribution's errcode for a registry that cannot serve now (its upstream is down).
    (errors.UpstreamUnavailable, "UNAVAILABLE", 503),
    # No spec code for a stalled body; an upload's is BLOB_UPLOAD_INVALID, with HTTP's 408.
    (errors.RequestBodyTimeout, "BLOB_UPLOAD_INVALID", 408),
)


def error_response(
    code: str,
    message: str,
    status: int,
    detail: object = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    all_headers: CIMultiDict[str] = CIMultiDict(API_VERSION_HEADER)
    if headers is not None:
        all_headers.extend(headers)
    return web.Response(
        status=status,
        body=json.dumps({"errors": [entry]}).encode(),
        content_type="application/json",
        headers=all_headers,
    )


def response_for(
    exc: errors.RegistryError, headers: Mapping[str, str] | None = None
) -> web.Response:
    if isinstance(exc, errors.TooManyRequests):
        headers = CIMultiDict(headers or {})
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    for kind, code, status in ERROR_TABLE:
        if isinstance(exc, kind):
            return error_response(code, exc.message, status, exc.detail, headers)
    return _internal_error(exc)


def _internal_error(exc: BaseException) -> web.Response:
    request_id = uuid.uuid4().hex
    log.error("unexpected error, request id %s", request_id, exc_info=exc)
    return error_response(
        "UNKNOWN",
        f"internal error; request id {request_id}",
        500,
        headers={"X-Request-Id": request_id},
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure under ``/v2/`` (and at its token endpoint) into the spec's error JSON."""
    if not (request.path.startswith("/v2") or request.path == TOKEN_PATH):
        return await handler(request)
    try:
        response = await handler(request)
    except errors.Unauthenticated as exc:
        discard_unread_body(request)  # an anonymous body is nobody's to read
        if "Authorization" in request.headers or request.body_exists:
            # Bad credentials, or a body sent without any: a refusal. A bare anonymous
            # request is the challenge every client starts with, and costs nothing.
            await pause_after_refusal(request)
        return response_for(exc, challenge_headers(request))
    except errors.RegistryError as exc:
        return response_for(exc, getattr(exc, "headers", None))
    except web.HTTPMethodNotAllowed as exc:
        return error_response(
            "UNSUPPORTED",
            f"method {request.method} is not supported on this endpoint",
            405,
            headers={"Allow": ",".join(sorted(exc.allowed_methods))},
        )
    except web.HTTPNotFound:
        return error_response("NOT_FOUND", "no such endpoint", 404)
    except web.HTTPException as exc:
        if exc.status == 413:
            discard_unread_body(request)
        if exc.status >= 400:
            code = "SIZE_INVALID" if exc.status == 413 else "UNSUPPORTED"
            return error_response(code, exc.reason, exc.status)
        raise
    except ConnectionError as exc:
        # The client went away mid-request: its failure, not ours. The answer reaches nobody
        # but the access log, which then says what happened instead of a 500.
        log.info("connection lost during %s %s: %s", request.method, request.path, exc)
        return error_response("BLOB_UPLOAD_INVALID", "the client closed the connection", 400)
    except Exception as exc:
        return _internal_error(exc)
    return response


async def add_api_version_header(request: web.Request, response: web.StreamResponse) -> None:
    """Every ``/v2/`` response says which API it speaks (set before headers are sent)."""
    response.headers.update(API_VERSION_HEADER)
