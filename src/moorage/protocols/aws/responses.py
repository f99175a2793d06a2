"""ECR API responses: a JSON 1.1 body, and ``x-amzn-RequestId`` on every one of them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from moorage.protocols.aws import shapes
from moorage.protocols.aws.errors import ApiError, server_error

log = logging.getLogger("moorage.ecr_api")

CONTENT_TYPE = "application/x-amz-json-1.1"
REQUEST_ID_HEADER = "x-amzn-RequestId"


def json_response(
    body: Mapping[str, Any],
    request_id: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type=CONTENT_TYPE,
        headers={REQUEST_ID_HEADER: request_id, **(headers or {})},
    )


def error_response(
    error: ApiError, request_id: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``error`` as AWS writes it; an error that cannot be written becomes a 500 (logged)."""
    try:
        body = shapes.error_body(error.type_name, error.message, error.extras)
    except (TypeError, ValueError):
        log.exception("cannot write %s; request id %s", error.type_name, request_id)
        error = server_error(request_id)
        body = shapes.error_body(error.type_name, error.message, {})
    return json_response(body, request_id, status=error.status, headers=headers)
