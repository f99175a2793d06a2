"""The token endpoint of the registry's Bearer challenge (``/token``).

docker's token flow (https://distribution.github.io/distribution/spec/auth/token/) sends the
login pair there, by ``GET`` with Basic auth or by an OAuth2 ``POST`` (``grant_type=password``
or ``refresh_token``, as containerd does), and then presents the token it gets as
``Authorization: Bearer``. The registry password from GetAuthorizationToken is already a
signed, expiring token bound to its caller, so once the authenticator accepts it, it is the
bearer token itself: nothing new is minted, and it stops working when the password does.
Scopes are echoed but grant nothing: every request is authorized on its own.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from aiohttp import web

from moorage.domain.errors import Unauthenticated
from moorage.ports.access import Credentials
from moorage.protocols.oci.auth import credentials_of
from moorage.protocols.oci.challenge import TOKEN_PATH
from moorage.protocols.oci.context import services

# How long a client may cache the token before asking again. The password behind it lasts
# 12 hours; asking again hourly keeps a revoked key from working long after revocation.
TOKEN_LIFETIME_SECONDS = 3600
ANONYMOUS_TOKEN = "anonymous"


async def get_token(request: web.Request) -> web.Response:
    credentials = credentials_of(request)
    return await _answer(request, credentials, _password_of(credentials.authorization))


async def post_token(request: web.Request) -> web.Response:
    form = await request.post()
    grant = form.get("grant_type")
    if grant == "password":
        username, password = str(form.get("username", "")), str(form.get("password", ""))
    elif grant == "refresh_token":
        username, password = "AWS", str(form.get("refresh_token", ""))
    else:
        # OAuth2's own error form (RFC 6749, 5.2), which this endpoint speaks on POST.
        return web.json_response({"error": "unsupported_grant_type"}, status=400)
    pair = base64.b64encode(f"{username}:{password}".encode()).decode()
    credentials = Credentials(
        authorization=f"Basic {pair}",
        source_ip=request.remote,
        secure_transport=request.secure,
    )
    return await _answer(request, credentials, password, oauth=True)


async def _answer(
    request: web.Request, credentials: Credentials, password: str | None, *, oauth: bool = False
) -> web.Response:
    caller = await services(request).authenticator.authenticate(credentials)
    if password is None:
        if caller.arn is None and not services(request).anonymous_tokens:
            raise Unauthenticated("authentication required")
        password = ANONYMOUS_TOKEN  # an authenticator that admits callers without credentials
    body: dict[str, object] = {
        "access_token": password,
        "expires_in": TOKEN_LIFETIME_SECONDS,
        "issued_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if not oauth:
        body["token"] = password
    scope = request.query.get("scope")
    if scope:
        body["scope"] = scope
    return web.json_response(body)


def _password_of(authorization: str | None) -> str | None:
    if authorization is None or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("malformed Basic credentials") from None
    _, _, password = decoded.partition(":")
    return password


ROUTES = [web.get(TOKEN_PATH, get_token), web.post(TOKEN_PATH, post_token)]
