"""Pull-through cache rules: Create/Describe/Update/Delete/ValidatePullThroughCacheRule
(shared reference §8.1).

What a rule means is ``domain/pull_through_cache.py``'s; the pulls it serves are
``services/pull_through_cache.py``'s. The dispatcher has authorized each operation on the
registry (``*``). Prefixes are answered as stored: without the trailing ``/`` ECR adds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from moorage.domain.pull_through_cache import ROOT, CacheRule
from moorage.protocols.aws.context import ApiContext
from moorage.protocols.aws.operations import operation
from moorage.protocols.aws.pagination import offset_page

if TYPE_CHECKING:  # app.py imports this module to mount it
    from moorage.app import Registry

DEFAULT_PAGE = 100


def rule_output(registry_id: str, rule: CacheRule) -> dict[str, Any]:
    return {
        "ecr_repository_prefix": rule.prefix,
        "upstream_registry_url": rule.upstream_url,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
        "registry_id": registry_id,
        "upstream_registry": rule.upstream_registry,
        "credential_arn": rule.credential_arn,
        "custom_role_arn": rule.custom_role_arn,
        "upstream_role_arn": rule.upstream_role_arn,
        "upstream_repository_prefix": rule.upstream_repository_prefix,
    }


@operation("CreatePullThroughCacheRule")
async def create_pull_through_cache_rule(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    rule = CacheRule(
        prefix=params["ecr_repository_prefix"],
        upstream_url=params["upstream_registry_url"],
        upstream_repository_prefix=params.get("upstream_repository_prefix") or ROOT,
        upstream_registry=params.get("upstream_registry"),
        credential_arn=params.get("credential_arn"),
        custom_role_arn=params.get("custom_role_arn"),
        upstream_role_arn=params.get("upstream_role_arn"),
    )
    created = await ctx.services.cache_rules.create(ctx.registry_id, rule)
    answer = rule_output(ctx.registry_id, created)
    del answer["updated_at"]  # the output shape has createdAt only
    return answer


@operation("DescribePullThroughCacheRules")
async def describe_pull_through_cache_rules(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    prefixes = params.get("ecr_repository_prefixes")
    rules = await ctx.services.cache_rules.describe(ctx.registry_id, prefixes)
    page, next_token = offset_page(
        rules,
        f"DescribePullThroughCacheRules/{ctx.registry_id}",
        params.get("next_token"),
        params.get("max_results") or DEFAULT_PAGE,
    )
    return {
        "pull_through_cache_rules": [rule_output(ctx.registry_id, r) for r in page],
        "next_token": next_token,
    }


@operation("UpdatePullThroughCacheRule")
async def update_pull_through_cache_rule(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    rule = await ctx.services.cache_rules.update(
        ctx.registry_id,
        params["ecr_repository_prefix"],
        credential_arn=params.get("credential_arn"),
        custom_role_arn=params.get("custom_role_arn"),
        upstream_role_arn=params.get("upstream_role_arn"),
    )
    return {
        "ecr_repository_prefix": rule.prefix,
        "registry_id": ctx.registry_id,
        "updated_at": rule.updated_at,
        "credential_arn": rule.credential_arn,
        "custom_role_arn": rule.custom_role_arn,
        "upstream_role_arn": rule.upstream_role_arn,
        "upstream_repository_prefix": rule.upstream_repository_prefix,
    }


@operation("DeletePullThroughCacheRule")
async def delete_pull_through_cache_rule(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    rule = await ctx.services.cache_rules.delete(ctx.registry_id, params["ecr_repository_prefix"])
    answer = rule_output(ctx.registry_id, rule)
    del answer["updated_at"], answer["upstream_registry"]
    return answer


@operation("ValidatePullThroughCacheRule")
async def validate_pull_through_cache_rule(
    ctx: ApiContext[Registry], params: dict[str, Any]
) -> Mapping[str, Any]:
    rule, failure = await ctx.services.cache_rules.validate(
        ctx.registry_id, params["ecr_repository_prefix"]
    )
    answer = rule_output(ctx.registry_id, rule)
    for key in ("created_at", "updated_at", "upstream_registry"):
        del answer[key]
    answer["is_valid"] = failure is None
    answer["failure"] = failure
    return answer
