"""The registry itself: GetAuthorizationToken, Get/PutAccountSetting (DescribeRegistry, which
answers the replication configuration, is in ``replication.py``).

GetAuthorizationToken hands out the ``/v2/`` login of the caller: ``authorizationToken`` is
base64 of ``AWS:<password>``, the password a login token (``iam/login_tokens.py``) bound to
the caller and valid 12 hours. The dispatcher has authorized ``ecr:GetAuthorizationToken`` on
``*`` in the caller's own account, so no repository policy takes part (shared reference §2.1:
only an identity policy can grant it; ``services/authorization.py`` keeps registry policies
out of it too). With ``registryIds`` there is one entry per registry, each with that
registry's ``proxyEndpoint`` and the same caller's token: the token carries the caller's
permissions, and each ``/v2/`` request is authorized on its own.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moorage.ports.clock import system_clock
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry


@operation("GetAuthorizationToken")
async def get_authorization_token(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """One ``authorizationData`` entry per requested registry (default: the caller's own),
    all carrying one fresh token of the caller, and its expiry (12 hours)."""
    registry_ids: list[str] = params.get("registry_ids") or [ctx.principal.registry_id]
    password, expires_at = ctx.services.login_tokens.issue(ctx.principal, system_clock())
    token = base64.b64encode(f"AWS:{password}".encode("ascii")).decode("ascii")
    addresses = ctx.services.addresses
    return {
        "authorization_data": [
            {
                "authorization_token": token,
                "expires_at": expires_at,
                "proxy_endpoint": addresses.proxy_endpoint(registry_id, ctx.host, ctx.scheme),
            }
            # A registry named twice gets one entry.
            for registry_id in dict.fromkeys(registry_ids)
        ]
    }


@operation("GetAccountSetting")
async def get_account_setting(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """A setting's value, or its default. Raises InvalidParameter for an unknown name."""
    name: str = params["name"]
    value = await ctx.services.registry_settings.get_account_setting(ctx.registry_id, name)
    return {"name": name, "value": value}


@operation("PutAccountSetting")
async def put_account_setting(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Store a setting's value. Raises InvalidParameter for an unknown name or a value the
    setting does not take."""
    name: str = params["name"]
    value = await ctx.services.registry_settings.put_account_setting(
        ctx.registry_id, name, params["value"]
    )
    return {"name": name, "value": value}
