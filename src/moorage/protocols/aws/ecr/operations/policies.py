"""Repository and registry policies: Set/Get/DeleteRepositoryPolicy, Put/Get/DeleteRegistryPolicy.

Texts are stored and returned exactly as given. A policy is checked before it is stored
(``services.repositories.check_policy_text``): at most 10,240 characters, and it must parse as
a resource policy, else ``InvalidParameterException`` "Invalid parameter at 'PolicyText' failed
to satisfy constraint: 'Invalid repository policy provided'" (or "registry"). Unlike ECR,
moorage does not check that the principals a policy names exist.

``force`` on SetRepositoryPolicy is accepted and has no effect: it is ECR's guard against a
policy that would lock its author out, and here an identity policy (or the account's root)
can always set a repository policy again, so nobody is locked out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry


def _repository_policy(ctx: ApiContext[Registry], name: str, text: str) -> Mapping[str, Any]:
    return {"registry_id": ctx.registry_id, "repository_name": name, "policy_text": text}


@operation("SetRepositoryPolicy")
async def set_repository_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Replace the repository's policy. Raises RepositoryNotFound, PolicyTextInvalid."""
    name: str = params["repository_name"]
    text = await ctx.services.repositories.set_policy(ctx.registry_id, name, params["policy_text"])
    return _repository_policy(ctx, name, text)


@operation("GetRepositoryPolicy")
async def get_repository_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """The repository's policy. Raises RepositoryNotFound, RepositoryPolicyNotFound."""
    name: str = params["repository_name"]
    text = await ctx.services.repositories.get_policy(ctx.registry_id, name)
    return _repository_policy(ctx, name, text)


@operation("DeleteRepositoryPolicy")
async def delete_repository_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Remove the repository's policy and return its text. Raises RepositoryNotFound,
    RepositoryPolicyNotFound."""
    name: str = params["repository_name"]
    text = await ctx.services.repositories.delete_policy(ctx.registry_id, name)
    return _repository_policy(ctx, name, text)


@operation("PutRegistryPolicy")
async def put_registry_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Replace the registry policy of the caller's registry. Raises PolicyTextInvalid."""
    text = await ctx.services.registry_settings.put_policy(ctx.registry_id, params["policy_text"])
    return {"registry_id": ctx.registry_id, "policy_text": text}


@operation("GetRegistryPolicy")
async def get_registry_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """The registry policy. Raises RegistryPolicyNotFound."""
    text = await ctx.services.registry_settings.get_policy(ctx.registry_id)
    return {"registry_id": ctx.registry_id, "policy_text": text}


@operation("DeleteRegistryPolicy")
async def delete_registry_policy(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    """Remove the registry policy and return its text. Raises RegistryPolicyNotFound."""
    text = await ctx.services.registry_settings.delete_policy(ctx.registry_id)
    return {"registry_id": ctx.registry_id, "policy_text": text}
