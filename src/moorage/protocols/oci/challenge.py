"""The ``WWW-Authenticate`` challenge of a 401 on ``/v2/``.

Two challenges, Basic first: ECR answers with Basic alone, and clients that pick the first
scheme they support (skopeo, containerd's resolver) log in with it, sending the
``AWS:<password>`` pair from GetAuthorizationToken on every request. Clients that prefer the
token flow (docker) find the Bearer challenge and exchange the same pair at ``/token``
(``protocols/oci/token.py``) for a bearer token. Either way every request is then
authorized on its own, by the policy engine.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from moorage.protocols.oci.context import services

TOKEN_PATH = "/token"


def challenge_headers(request: web.Request) -> CIMultiDict[str]:
    base = f"{request.scheme}://{request.host}"
    service = request.host
    bearer = f'Bearer realm="{base}{TOKEN_PATH}",service="{service}"'
    name = request.match_info.get("name")
    if name is not None:
        actions = "pull" if request.method in ("GET", "HEAD") else "pull,push"
        bearer += f',scope="repository:{name}:{actions}"'
    headers: CIMultiDict[str] = CIMultiDict()
    if not services(request).anonymous_tokens:
        headers.add("WWW-Authenticate", f'Basic realm="{base}/",service="{service}"')
    # The public address challenges with Bearer alone, as ECR Public does: a client without
    # credentials then fetches an anonymous token instead of giving up on Basic.
    headers.add("WWW-Authenticate", bearer)
    return headers
